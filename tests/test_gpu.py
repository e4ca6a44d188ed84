"""CUDA checks, run by scripts/gpu_check.sh: per-phase peaks, NVML agreement, every precision
policy, 4-bit QLoRA and the calibration, each on the GPU. Skipped, with the reason, without one.

Budgets are stated where they come from; nothing here times anything.
"""

import math

import pytest
import torch

from bench import methods, precision, train
from bench.matrix import build_matrix
from bench.measure.timer import StepTimer
from bench.profile import load_profile

CUDA = torch.cuda.is_available()
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not CUDA, reason=f"no CUDA device: torch {torch.__version__} sees none on this machine")]
MiB = 2**20
DEVICE = "cuda:0"


def bf16_capable() -> bool:
    return CUDA and torch.cuda.get_device_capability(0)[0] >= 8


def spec(method="lora", policy="fp32", **extra):
    (one,) = build_matrix(load_profile("smoke", overrides={"run": {"methods": [method], "device": "cuda"}}))
    return precision.apply(dict(one, device=DEVICE, **extra), precision.FIXED[policy])


def batches(steps=2, rows=2, seq=32):
    generator = torch.Generator().manual_seed(0)
    out = []
    for _ in range(steps):
        ids = torch.randint(3, 49152, (rows, seq), generator=generator)
        out.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()})
    return out


def test_cuda_peaks_are_per_phase():
    from bench.measure.memory import CudaMemoryTracker

    tracker = CudaMemoryTracker(DEVICE)
    with tracker.track("big"):
        blob = torch.ones(512 * MiB, dtype=torch.uint8, device=DEVICE)
        del blob
    with tracker.track("small"):
        blob = torch.ones(64 * MiB, dtype=torch.uint8, device=DEVICE)
        del blob
    big, small = tracker.phases["big"], tracker.phases["small"]
    assert big["allocated_peak_bytes"] >= 512 * MiB and big["peak_bytes"] == big["reserved_peak_bytes"]
    assert 64 * MiB <= small["allocated_peak_bytes"] < 512 * MiB  # the reset works: not the big phase's peak
    assert small["reserved_peak_bytes"] >= small["allocated_peak_bytes"]


def test_nvml_finds_this_gpu_and_its_process_figure_matches_reserved_plus_context():
    from bench.measure.memory import CudaMemoryTracker

    tracker = CudaMemoryTracker(DEVICE)
    assert tracker.nvml.where.get("how") == "uuid", tracker.nvml.where
    context = tracker.context_bytes()
    if context is None:
        pytest.skip(f"NVML lists no figure for this pid (container PID namespace?): {tracker.nvml.where}")
    with tracker.track("hold") as figures:
        held = torch.ones(1024 * MiB, dtype=torch.uint8, device=DEVICE)
    assert figures["reserved_end_bytes"] >= 1024 * MiB
    outside_torch = figures["nvml_process_bytes"] - figures["reserved_end_bytes"]
    # what NVML charges this process beyond torch's pool is the context measured before, give or
    # take kernels loaded lazily in between (CUDA_MODULE_LOADING=LAZY): a first-contact bound
    assert -64 * MiB <= outside_torch - context <= 512 * MiB, (outside_torch, context, figures)
    assert figures["nvml_used_bytes"] >= figures["nvml_process_bytes"]
    del held


@pytest.mark.parametrize("policy", ["fp32", "bf16-true", "bf16-mixed", "fp16-mixed"])
def test_every_precision_policy_trains_on_cuda(policy):
    if "bf16" in policy and not bf16_capable():
        pytest.skip(f"{policy} needs compute capability >= 8.0; this GPU is {torch.cuda.get_device_capability(0)}")
    chosen = precision.FIXED[policy]
    run = spec("lora", policy, steps=2, warmup_steps=0, lr=1e-3)
    model = methods.build(run)
    base = {p.dtype for n, p in model.named_parameters() if "lora_" not in n}
    adapters = {p.dtype for n, p in model.named_parameters() if "lora_" in n}
    assert base == {getattr(torch, chosen.weights_dtype)} and adapters == {torch.float32}
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    optimizer = methods.make_optimizer(model, run)
    losses = train.train(model, batches(), optimizer=optimizer, scheduler=methods.make_scheduler(optimizer, run),
                         grad_accum=1, device=DEVICE, timer=StepTimer("cuda"), policy=chosen)
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)


def test_qlora_builds_nf4_with_double_quantisation_on_cuda_and_trains():
    import bitsandbytes as bnb

    run = spec("qlora", "bf16-true" if bf16_capable() else "fp32", steps=2, warmup_steps=0, lr=1e-3)
    model = methods.build(run)
    linears = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert linears, "no 4-bit linear layers"
    for layer in linears:
        state = layer.weight.quant_state
        assert layer.weight.device.type == "cuda" and state.quant_type == "nf4" and state.nested
    optimizer = methods.make_optimizer(model, run)
    losses = train.train(model, batches(), optimizer=optimizer, scheduler=methods.make_scheduler(optimizer, run),
                         grad_accum=1, device=DEVICE, timer=StepTimer("cuda"),
                         policy=precision.FIXED[run["precision"]])
    assert all(math.isfinite(x) for x in losses)


def test_calibration_runs_on_the_gpu_in_the_compute_dtype():
    from bench.gate.calibrate import calibration_kind, measure_calibration

    dtype = "bfloat16" if bf16_capable() else "float16"
    figures = measure_calibration(device=DEVICE, dtype=dtype, reps=5)
    assert figures["device"] == "cuda" and figures["dtype"] == dtype
    assert math.isfinite(figures["matmul_gflops"]) and figures["matmul_gflops"] > 0
    assert calibration_kind({"env": {"calibration": figures}}) == f"cuda/{dtype}"
    # a peak that is a peak: 8192^2 products back to back reach most of the dense datasheet rate
    # (cuBLAS sustains 60-80% of it on A100/H100); the old 1024^2 per-call timing read far below
    if figures["datasheet_gflops"]:
        assert 0.4 < figures["matmul_gflops"] / figures["datasheet_gflops"] <= 1.05, figures
    policy, block = precision.resolve("auto", device="cuda")
    assert policy.name == ("bf16-true" if bf16_capable() else "fp16-mixed") and "compute capability" in block["reason"]
