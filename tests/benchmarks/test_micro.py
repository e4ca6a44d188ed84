"""Micro-benchmarks of the hot paths, run and compared by scripts/micro_bench.sh.

In the normal suite (pyproject sets --benchmark-disable) each body runs once, as a smoke
test. The script enables timing, compares with this CPU's profiles/baselines/micro/<cpu>.json on `min`
and prints one PASS/FAIL line. Torch runs on one thread here: on a shared 2-core machine
that is steadier than two, and the figures stay comparable across core counts.

FTBENCH_MICRO_SLOWDOWN=1.25 makes every timed call take 1.25x its own time (a busy wait after
it): the injected regression scripts/micro_noise.py uses to measure how often the threshold
misses a real 25% slowdown. Unset, nothing is wrapped.
"""

import math
import os
import time

import pytest
import torch

SLOWDOWN = float(os.environ.get("FTBENCH_MICRO_SLOWDOWN", "1"))

SIZE = 1024          # hidden size of the LoRA layer and side of the NF4 matrix
BATCH, SEQ = 8, 128  # 1,024 tokens per forward, as a small training micro-batch


def timed(fn):
    """The function to time: `fn` itself, or `fn` slowed by SLOWDOWN when that is set."""
    if SLOWDOWN == 1:
        return fn

    def call(*args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        until = start + SLOWDOWN * (time.perf_counter() - start)
        while time.perf_counter() < until:
            pass
        return out
    return call


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def lora_model():
    from peft import LoraConfig, get_peft_model

    base = torch.nn.Sequential(torch.nn.Linear(SIZE, SIZE))
    return get_peft_model(base, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["0"]))


def test_lora_linear_forward(benchmark, lora_model):
    x = torch.randn(BATCH, SEQ, SIZE)

    def forward():
        with torch.no_grad():
            return lora_model(x)

    out = benchmark(timed(forward))
    assert out.shape == (BATCH, SEQ, SIZE)


def test_lora_linear_forward_backward(benchmark, lora_model):
    x = torch.randn(BATCH, SEQ, SIZE)
    trainable = [p for p in lora_model.parameters() if p.requires_grad]

    def step():
        for p in trainable:
            p.grad = None
        lora_model(x).square().mean().backward()

    benchmark(timed(step))
    assert len(trainable) == 2 and all(p.grad is not None for p in trainable)  # lora_A and lora_B only


def test_nf4_quantize(benchmark):
    import bitsandbytes.functional as F

    weight = torch.randn(SIZE, SIZE)
    packed, state = benchmark(timed(F.quantize_4bit), weight, quant_type="nf4")
    assert packed.numel() == SIZE * SIZE // 2 and state.quant_type == "nf4"  # two weights a byte


def test_nf4_dequantize(benchmark):
    import bitsandbytes.functional as F

    weight = torch.randn(SIZE, SIZE)
    packed, state = F.quantize_4bit(weight, quant_type="nf4")
    restored = benchmark(timed(F.dequantize_4bit), packed, state)
    assert restored.shape == weight.shape
    assert (restored - weight).abs().mean() < 0.1  # NF4 error on N(0, 1) weights is ~0.07


def test_calibration_matmul(benchmark):
    """The gate's calibration figure: tells a slower machine from slower code."""
    from bench.measure.matmul import measure_calibration

    result = benchmark(timed(measure_calibration), reps=3, warmup=1)
    assert result["matmul_gflops"] > 0 and result["threads"] == 1


@pytest.fixture(scope="module")
def tiny_specs():
    from bench.training import precision
    from bench.run.matrix import build_matrix
    from bench.run.profile import load_profile

    settings = load_profile("smoke", overrides={"run": {"methods": ["full", "lora", "qlora", "dora", "lora8"],
                                                        "device": "cpu"}})
    return {spec["method"]: precision.apply(dict(spec, device="cpu"), precision.FIXED["fp32"])
            for spec in build_matrix(settings)}


@pytest.mark.parametrize("method", ["full", "lora", "qlora", "dora", "lora8"])
def test_train_step_tiny_llama(benchmark, tiny_specs, method):
    """One optimizer step (forward, backward, AdamW) on tiny-llama, 4 x 64 tokens, per method."""
    from transformers import AutoTokenizer

    from bench import data
    from bench.training import methods

    spec = tiny_specs[method]
    model = methods.build(spec)
    tokenizer = AutoTokenizer.from_pretrained(spec["model_path"])
    (batch,) = data.prepare(tokenizer=tokenizer, source="arc-easy", seq_len=64, heldout=0).train_batches(
        seed=0, steps=1, grad_accum=1, batch_size=4)
    optimizer = methods.make_optimizer(model, spec)
    model.train()
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    def step():
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    loss = benchmark(timed(step))
    # what was timed was a training step: a finite loss, and the optimizer moved the trainable
    # weights (lora_B starts at zero and moves on the first step; full moves everything)
    after = dict(model.named_parameters())
    moved = [n for n, before in trainable.items() if not torch.equal(after[n].detach(), before)]
    assert math.isfinite(loss) and moved, method
    assert all(torch.isfinite(after[n]).all() for n in trainable)
