"""The measured breakdown on tiny-llama: exact against arithmetic, and harmless to the trained model.

Each method trains two steps (so the optimizer state exists), then takes the profiled step. The
expected bytes are computed here from config.json (bytes per element x counts); the code under
test reads them from torch's profiler and the model's own tensors.
"""

import copy
import json
import math

import pytest
import torch

from bench import data
from bench.measure import breakdown
from bench.measure.timer import StepTimer
from bench.run.matrix import build_matrix
from bench.run.profile import load_profile
from bench.training import loop as train, methods, precision

FP32 = precision.FIXED["fp32"]


class NoSchedule:
    def step(self):
        pass


def trained(method, tokenizer, **extra):
    """A tiny-llama model of `method` after 2 AdamW steps, its optimizer, and the batches."""
    (one,) = build_matrix(load_profile("smoke", overrides={"run": {"methods": [method]}}))
    spec = precision.apply(dict(one, device="cpu", **extra), FP32)
    torch.manual_seed(0)
    model = methods.build(spec)
    batches = data.batches(tokenizer, seed=0, steps=2, grad_accum=1, batch_size=2, seq_len=64)
    optimizer = methods.make_optimizer(model, spec)
    train.train(model, batches, optimizer=optimizer, scheduler=NoSchedule(), grad_accum=1, device="cpu",
                timer=StepTimer("cpu"))
    return model, optimizer, batches, spec


@pytest.fixture(scope="module")
def tokenizer(tiny_path):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tiny_path)


@pytest.fixture(scope="module")
def config(tiny_path):
    return json.loads((tiny_path / "config.json").read_text())


def counts(config) -> dict:
    """Parameter counts of tiny-llama from its config: decoder linears (weight shapes), the tied
    embedding, RMSNorm weights, and the LoRA adapters (r 8 on every linear)."""
    h, i, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    shapes = [(h, h)] * 4 + [(h, i), (h, i), (i, h)]  # q k v o (4 heads x 16 = h), gate up down
    return {"linear": [a * b for a, b in shapes] * layers, "out_rows": [b for _, b in shapes] * layers,
            "embed": config["vocab_size"] * h, "norms": (2 * layers + 1) * h, "norm_tensors": 2 * layers + 1,
            "adapters": [8 * (a + b) for a, b in shapes] * layers}


def nf4_constants(numel: int) -> int:
    """bitsandbytes NF4 with double quantisation, blocksize 64: one uint8 absmax per block, one fp32
    nested absmax per 256 blocks, a 16-entry fp32 code, an fp32 offset, a 256-entry fp32 nested code."""
    blocks = numel // 64
    return blocks + 4 * math.ceil(blocks / 256) + 16 * 4 + 4 + 256 * 4


def expected(method: str, c: dict) -> dict:
    linear, rest = sum(c["linear"]), c["embed"] + c["norms"]
    adapters = sum(c["adapters"])
    if method == "full":
        tensors = len(c["linear"]) + 1 + c["norm_tensors"]  # linears, the (tied) embedding, norms
        return {"params": {"parameters_fp32": 4 * (linear + rest)}, "trainable": linear + rest, "tensors": tensors}
    if method == "dora":  # one magnitude per output row of every adapted linear
        adapters += sum(c["out_rows"])
    params = {"adapters": 4 * adapters}
    if method == "qlora":
        params.update(parameters_fp32=4 * rest, parameters_nf4=linear // 2,
                      quant_constants=sum(nf4_constants(n) for n in c["linear"]))
    elif method == "lora8":
        params.update(parameters_fp32=4 * rest, parameters_int8=linear, quant_constants=4 * sum(c["out_rows"]))
    else:
        params.update(parameters_fp32=4 * (linear + rest))
    per_linear = 3 if method == "dora" else 2  # lora_A, lora_B (and DoRA's magnitude)
    return {"params": params, "trainable": adapters, "tensors": per_linear * len(c["linear"])}


@pytest.fixture(scope="module", params=["full", "lora", "qlora", "lora8", "dora"])
def measured(request, tokenizer):
    """One profiled step per method (each costs seconds), with what the test compares it to:
    every parameter, the learning rates, the RNG state and eval logits from before the step.

    The step sees the model as the worker leaves it: trained, never yet run in eval mode. The
    reference logits come from a copy, because an eval forward is not neutral on every CPU: with
    avx512_bf16, bitsandbytes repacks each 4-bit weight for its fused kernel at the first eval
    forward (see test_an_eval_forward_repacks_4bit_weights_only_where_bitsandbytes_says_so)."""
    model, optimizer, batches, _ = trained(request.param, tokenizer)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    lrs, rng = [g["lr"] for g in optimizer.param_groups], torch.get_rng_state()
    probe = {k: batches[0][k] for k in ("input_ids", "attention_mask")}
    logits = _logits(copy.deepcopy(model), probe)
    assert torch.equal(torch.get_rng_state(), rng)
    got = breakdown.measure(model=model, micro_batches=batches[-1:], optimizer=optimizer, policy=FP32,
                            device="cpu", measured_peak_bytes=10**9, baseline_bytes=None)
    return {"method": request.param, "got": got, "model": model, "optimizer": optimizer, "before": before,
            "lrs": lrs, "rng": rng, "probe": probe, "logits": logits}


def _logits(model, probe):
    model.eval()
    with torch.no_grad():
        return model(**probe).logits


def test_parameters_gradients_and_optimizer_state_equal_their_arithmetic(measured, config):
    got, method = measured["got"], measured["method"]
    want = expected(method, counts(config))
    cats = got["categories"]
    for name, nbytes in want["params"].items():
        assert cats.get(name) == nbytes, (name, cats)
    # AdamW: exp_avg and exp_avg_sq in fp32 per trainable element, plus a 4-byte fp32 step per tensor
    # (DoRA adds one magnitude vector per linear: its out_features, trained like the adapters)
    assert cats["optimizer_state"] == 8 * want["trainable"] + 4 * want["tensors"]
    # every gradient exists at once between backward and the optimizer step (set to None after)
    assert got["tool_max_bytes"]["gradient"] == 4 * want["trainable"]
    assert cats["inputs"] == 3 * 2 * 64 * 8  # input_ids, attention_mask, labels: 2 x 64 int64 each
    assert got["instant"]["phase"] in ("forward", "backward", "optimizer_step")
    assert got["unattributed_bytes"] == 10**9 - sum(cats.values())
    # renaming moves bytes between categories, never loses any: the categories hold every byte torch
    # saw live at the peak, plus the model's tensors no op touched
    assert sum(cats.values()) == got["instant"]["tensor_bytes"] + got["owned_unprofiled_bytes"]


def test_the_profiled_step_leaves_the_scored_model_unchanged(measured):
    """Learning rate 0: every parameter bit-identical, so every score is; the RNG and the learning
    rates are restored too (dropout in the step draws nothing that eval would see)."""
    model, optimizer = measured["model"], measured["optimizer"]
    assert "error" not in measured["got"]
    assert all(torch.equal(measured["before"][n], p) for n, p in model.named_parameters())
    assert [g["lr"] for g in optimizer.param_groups] == measured["lrs"]
    assert torch.equal(torch.get_rng_state(), measured["rng"])
    assert torch.equal(_logits(model, measured["probe"]), measured["logits"])


def test_a_step_that_cannot_be_profiled_records_why_and_changes_nothing(tokenizer):
    model, optimizer, batches, _ = trained("lora", tokenizer)
    lrs = [g["lr"] for g in optimizer.param_groups]

    def broken_step(*args, **kwargs):
        raise MemoryError("cannot allocate memory for the profiled step")

    optimizer.step = broken_step
    got = breakdown.measure(model=model, micro_batches=batches[-1:], optimizer=optimizer, policy=FP32,
                            device="cpu", measured_peak_bytes=10**9)
    assert got == {"error": "profiled step failed: MemoryError: cannot allocate memory for the profiled step"}
    assert [g["lr"] for g in optimizer.param_groups] == lrs
    assert all(p.grad is None for p in model.parameters())


def test_a_step_that_moves_a_parameter_is_refused(tokenizer):
    """The guard behind the lr-0 argument: if an optimizer ignored lr, scoring must not go on."""
    model, optimizer, batches, _ = trained("lora", tokenizer)
    step = optimizer.step

    def step_ignoring_lr(*args, **kwargs):
        step()
        next(p for p in model.parameters() if p.requires_grad).data.add_(1.0)

    optimizer.step = step_ignoring_lr
    with pytest.raises(breakdown.ModelChanged):
        breakdown.measure(model=model, micro_batches=batches[-1:], optimizer=optimizer, policy=FP32,
                          device="cpu", measured_peak_bytes=10**9)


def test_a_step_that_moves_a_frozen_4bit_constant_is_refused(tokenizer):
    """The guard covers what is scored, not only what trains: a frozen NF4 block scale counts."""
    model, optimizer, batches, _ = trained("qlora", tokenizer)
    step = optimizer.step
    state = next(m.weight.quant_state for m in model.modules() if hasattr(getattr(m, "weight", None), "quant_state"))

    def step_touching_a_constant(*args, **kwargs):
        step()
        state.absmax[0] += 1

    optimizer.step = step_touching_a_constant
    with pytest.raises(breakdown.ModelChanged):
        breakdown.measure(model=model, micro_batches=batches[-1:], optimizer=optimizer, policy=FP32,
                          device="cpu", measured_peak_bytes=10**9)


def packed_for_cpu_constants(numel: int) -> int:
    """bitsandbytes' CPU inference layout (avx512_bf16, first forward in eval mode without grad):
    the nested absmax expanded to one bf16 per 64-block, state2 dropped; the 16-entry fp32 code and
    the fp32 offset stay on the state."""
    return 2 * (numel // 64) + 16 * 4 + 4


def test_an_eval_forward_repacks_4bit_weights_only_where_bitsandbytes_says_so(tokenizer, config):
    """Which 4-bit path this CPU takes, and that the attribution counts either layout exactly: the
    trained model holds bitsandbytes' training layout on every CPU (what the profiled step sees);
    an eval forward with bitsandbytes' own choice keeps it on an AVX2-only CPU and repacks it where
    bitsandbytes finds avx512_bf16 (bench.training.methods turns the repack off under a non-bf16 policy)."""
    from bitsandbytes.functional import has_avx512bf16

    from bench.measure import attribution

    c = counts(config)

    def owned():
        totals = {}
        for name, nbytes in attribution.storage_names(model, device="cpu").values():
            totals[name] = totals.get(name, 0) + nbytes
        return totals

    model, _, batches, _ = trained("qlora", tokenizer)
    training = owned()
    assert (training["parameters_nf4"], training["quant_constants"]) == \
        (sum(c["linear"]) // 2, sum(nf4_constants(n) for n in c["linear"]))
    # bitsandbytes' own choice, as under a bf16 policy (fp32 pins it off: bench.training.methods)
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = has_avx512bf16()
    _logits(model, {k: batches[0][k] for k in ("input_ids", "attention_mask")})
    constants = packed_for_cpu_constants if has_avx512bf16() else nf4_constants
    assert (owned()["parameters_nf4"], owned()["quant_constants"]) == \
        (sum(c["linear"]) // 2, sum(constants(n) for n in c["linear"]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA breakdown needs a GPU; none on this machine")
def test_cuda_breakdown_attributes_allocated_memory(tokenizer):
    (one,) = build_matrix(load_profile("smoke", overrides={"run": {"methods": ["lora"]}}))
    spec = precision.apply(dict(one, device="cuda"), FP32)
    model = methods.build(spec)
    batches = data.batches(tokenizer, seed=0, steps=2, grad_accum=1, batch_size=2, seq_len=64)
    optimizer = methods.make_optimizer(model, spec)
    train.train(model, batches, optimizer=optimizer, scheduler=NoSchedule(), grad_accum=1, device="cuda",
                timer=StepTimer("cuda"))
    torch.cuda.reset_peak_memory_stats()
    train.train(model, batches[-1:], optimizer=optimizer, scheduler=NoSchedule(), grad_accum=1, device="cuda",
                timer=StepTimer("cuda"))
    peak = torch.cuda.max_memory_allocated()
    got = breakdown.measure(model=model, micro_batches=batches[-1:], optimizer=optimizer, policy=FP32,
                            device="cuda", measured_peak_bytes=peak)
    assert "process_baseline" not in got["categories"]
    assert abs(got["unattributed_share"]) < 0.05, got


def test_the_checksum_sums_in_chunks_and_never_widens_a_whole_tensor():
    # a whole-tensor integer sum widens to int64 first: 8 bytes per element, and an 8B model's
    # 525M-element embedding asked for 4.2 GB in the breakdown (a measured oom at 8B)
    bits = torch.arange(-5_000, 5_000, dtype=torch.int16)
    tensor = bits.view(torch.bfloat16)
    whole = breakdown._checksum(tensor, chunk=bits.numel())
    assert breakdown._checksum(tensor, chunk=333) == whole  # chunks that do not divide the length
    assert whole[2] == int(bits.to(torch.int64).sum())
    big = torch.zeros(1 << 24, dtype=torch.bfloat16)  # 16M elements: 128 MiB as int64
    with torch.profiler.profile(profile_memory=True) as prof:
        breakdown._checksum(big)
    widest = max(event.cpu_memory_usage for event in prof.events())
    assert widest <= breakdown.CHECKSUM_CHUNK * 8, f"{widest:,} bytes allocated by one op"
