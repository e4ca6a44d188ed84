"""Each method on tiny-llama, in-process: what trains, what is counted, that it learns, and that
the adapter methods differ only in how the base is stored."""

import math

import pytest
import torch

from bench import data
from bench.measure.params import count_params
from bench.measure.timer import StepTimer, throughput
from bench.run.matrix import build_matrix
from bench.run.profile import load_profile
from bench.training import loop as train, methods, precision

ADAPTERS = ("lora", "dora", "qlora", "lora8")


@pytest.fixture(scope="module")
def spec_for():
    specs = {s["method"]: s for s in build_matrix(load_profile("smoke", overrides={
        "run": {"methods": list(methods.METHODS), "device": "cpu"}}))}

    def make(method, policy="fp32", **extra):
        return precision.apply(dict(specs[method], device="cpu", **extra), precision.FIXED[policy])
    return make


@pytest.fixture(scope="module")
def tokenizer(tiny_path):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tiny_path)


@pytest.mark.parametrize("method", ["full", "lora", "qlora", "dora", "lora8"])
def test_each_method_learns_on_tiny_llama(method, spec_for, tokenizer):
    """Ten steps on one repeated batch at a high learning rate: the loss must fall by 0.3 nats or more
    (measured: 0.75 for lora, the slowest; dropout alone moves it by ~0.01), which only happens if
    gradients reach the trainable parameters and the optimizer applies them."""
    spec = spec_for(method, steps=10, warmup_steps=1, lr=1e-2)
    model = methods.build(spec)
    counts = count_params(model)
    batch = data.batches(tokenizer, seed=0, steps=1, grad_accum=1, batch_size=2, seq_len=32)[0]
    optimizer = methods.make_optimizer(model, spec)
    timer = StepTimer("cpu")
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    losses = train.train(model, [batch] * 10, optimizer=optimizer, scheduler=methods.make_scheduler(optimizer, spec),
                         grad_accum=1, device="cpu", timer=timer)
    assert len(losses) == 10 and all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0] - 0.3, losses
    assert counts["trainable"] > 0 and counts["trainable"] == sum(p.numel() for p in trainable.values())
    stats = throughput(timer.times_s, timer.tokens, warmup_steps=1)
    assert stats["tokens"] == 9 * int(batch["attention_mask"].sum())


def test_trainable_counts_relate_as_the_methods_say(spec_for):
    counts = {m: count_params(methods.build(spec_for(m))) for m in methods.METHODS}
    assert counts["base"]["trainable"] == 0
    assert counts["full"]["trainable"] == counts["full"]["total"]
    assert counts["lora"]["trainable"] == counts["qlora"]["trainable"] == counts["lora8"]["trainable"]
    assert counts["dora"]["trainable"] > counts["lora"]["trainable"]
    # a 4-bit (or 8-bit) base reports the same total as its full-precision base
    assert counts["qlora"]["total"] == counts["lora"]["total"] == counts["lora8"]["total"]
    assert counts["lora"]["total"] - counts["lora"]["trainable"] == counts["full"]["total"]


def test_four_bit_base_counts_as_its_sixteen_bit_total(spec_for):
    full = methods.build(spec_for("base"))
    quant = methods._load(spec_for("base"), quantization_config=methods.nf4_config(spec_for("base")))
    naive = sum(p.numel() for p in quant.parameters())
    assert naive < count_params(full)["total"]          # what sum(numel) would wrongly say
    assert count_params(quant)["total"] == count_params(full)["total"]


def test_qlora_builds_nf4_with_double_quantisation_through_the_method(spec_for):
    import bitsandbytes as bnb

    model = methods.build(spec_for("qlora"))
    quantised = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantised, "qlora left no Linear4bit in the model"
    for module in quantised:
        state = module.weight.quant_state
        assert state.quant_type == "nf4"
        assert state.nested, "double quantisation off: the absmax constants are not quantised themselves"
        assert module.compute_dtype == torch.float32
    lora8 = methods.build(spec_for("lora8"))
    assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in lora8.modules())


def _dtypes_outside_quantised_linears(model) -> dict:
    """{parameter name: dtype} for every parameter except the base weights of the adapted linears
    (which is where the methods are meant to differ)."""
    return {name.replace(".base_layer", ""): p.dtype for name, p in model.named_parameters()
            if not (".base_layer." in name and name.endswith(("weight", "bias")))}


@pytest.mark.parametrize("policy", ["fp32", "bf16-true"])
def test_adapter_methods_keep_the_same_dtypes_outside_the_quantised_linears(spec_for, policy):
    """Embeddings, norms, lm_head and adapters: same dtype for lora, dora, qlora and lora8 under one
    policy (no k-bit-only fp32 upcast); adapters fp32, everything else the policy's weight dtype."""
    expected = getattr(torch, precision.FIXED[policy].weights_dtype)
    seen = {m: _dtypes_outside_quantised_linears(methods.build(spec_for(m, policy=policy))) for m in ADAPTERS}
    lora = seen["lora"]
    assert seen["qlora"] == lora and seen["lora8"] == lora
    assert {k: v for k, v in seen["dora"].items() if k in lora} == lora
    for name, dtype in lora.items():
        assert dtype == (torch.float32 if "lora_" in name else expected), (name, dtype)
    assert any("embed_tokens" in n for n in lora) and any("norm" in n for n in lora)


def test_same_data_same_order_for_every_method(tokenizer):
    a = data.batches(tokenizer, seed=3, steps=2, grad_accum=2, batch_size=2, seq_len=16)
    b = data.batches(tokenizer, seed=3, steps=2, grad_accum=2, batch_size=2, seq_len=16)
    c = data.batches(tokenizer, seed=4, steps=2, grad_accum=2, batch_size=2, seq_len=16)
    assert len(a) == 4 and all(x["input_ids"].equal(y["input_ids"]) for x, y in zip(a, b))
    assert not all(x["input_ids"].equal(y["input_ids"]) for x, y in zip(a, c))
    assert (a[0]["labels"][a[0]["attention_mask"] == 0] == -100).all()


@pytest.mark.parametrize("policy", ["fp32", "bf16-true"])
def test_qlora_scores_in_the_policys_compute_dtype(spec_for, policy):
    """bitsandbytes repacks a 4-bit layer for bf16 at its first gradient-free forward on CPUs with
    avx512_bf16 (an AMX machine does, an AVX2-only one does not). Under fp32 that would score QLoRA
    in bf16: the method pins the training layout unless the policy computes in bf16."""
    import bitsandbytes as bnb
    from bitsandbytes.functional import has_avx512bf16

    model = methods.build(spec_for("qlora", policy=policy)).eval()
    with torch.no_grad():
        model(input_ids=torch.tensor([[1, 2, 3, 4]]))
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    repacked = [bool(getattr(m.weight.quant_state, "packing_format_for_cpu", False)) for m in layers]
    if policy == "fp32":
        assert not any(repacked), "a 4-bit layer was repacked for bf16 under an fp32 policy"
    else:  # bf16 compute: bitsandbytes' own choice stands (repacked exactly where the CPU has avx512_bf16)
        assert all(r == has_avx512bf16() for r in repacked)
