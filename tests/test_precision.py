"""The precision policy: how auto resolves, what each policy means, and bad requests."""

from pathlib import Path

import pytest

from bench.training import precision as P
from bench.util.errors import BenchError


def fake_calibration(fp32, bf16):
    return lambda dtype: {"float32": fp32, "bfloat16": bf16}[dtype]


@pytest.mark.parametrize("fp32, bf16, chosen", [
    (54.0, 0.3, "fp32"),         # an AVX2-only CPU: bf16 emulated, ~100x slower
    (250.0, 2195.0, "bf16-true"),  # an AMX CPU: bf16 ~9x faster
    (100.0, 110.0, "fp32"),      # a near tie: not worth a policy that differs between runs
    (100.0, 125.0, "bf16-true"),  # exactly the margin
])
def test_auto_on_cpu_follows_the_measured_matmul_ratio(fp32, bf16, chosen):
    policy, block = P.resolve("auto", device="cpu", calibrate=fake_calibration(fp32, bf16))
    assert policy.name == block["policy"] == chosen
    assert block["requested"] == "auto" and block["calibration"] == {"float32_gflops": fp32, "bfloat16_gflops": bf16}
    assert f"{bf16 / fp32:.2f}x" in block["reason"]


def test_a_named_policy_is_taken_as_is_and_never_calibrates():
    def boom(dtype):
        raise AssertionError("calibrated for a fixed policy")
    policy, block = P.resolve("bf16-mixed", device="cpu", calibrate=boom)
    assert (policy.weights_dtype, policy.autocast_dtype, policy.compute_dtype) == ("float32", "bfloat16", "bfloat16")
    assert block["reason"] == "requested" and block["calibration"] is None


@pytest.mark.parametrize("name, weights, compute, scaler", [
    ("fp32", "float32", "float32", False), ("bf16-true", "bfloat16", "bfloat16", False),
    ("bf16-mixed", "float32", "bfloat16", False), ("fp16-mixed", "float32", "float16", True)])
def test_each_policy_states_every_dtype(name, weights, compute, scaler):
    _, block = P.resolve(name, device="cpu")
    assert (block["weights_dtype"], block["compute_dtype"], block["grad_scaler"]) == (weights, compute, scaler)
    assert block["adapter_dtype"] == "float32" and block["kbit_upcast"] is False
    assert (P.grad_scaler(P.FIXED[name], "cpu") is not None) == scaler


def test_auto_on_cuda_follows_the_compute_capability(monkeypatch):
    monkeypatch.setattr(P, "_cuda_major", lambda: 9)
    assert P.resolve("auto", device="cuda")[0].name == "bf16-true"
    monkeypatch.setattr(P, "_cuda_major", lambda: 7)
    assert P.resolve("auto", device="cuda")[0].name == "fp16-mixed"


def test_bf16_on_a_gpu_before_sm80_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setattr(P, "_cuda_major", lambda: 7)
    for name in ("bf16-true", "bf16-mixed"):
        with pytest.raises(BenchError,
                           match=r"needs bf16 .* this GPU is 7\.x; valid choices here: fp32, fp16-mixed, auto"):
            P.resolve(name, device="cuda")
    assert P.resolve("fp16-mixed", device="cuda")[0].grad_scaler


def test_unknown_policy_and_missing_cuda_are_one_line_errors():
    with pytest.raises(BenchError, match="unknown precision 'fp8'; valid choices: auto, fp32, bf16-true"):
        P.resolve("fp8", device="cpu")
    import torch
    if not torch.cuda.is_available():
        with pytest.raises(BenchError, match="device 'cuda' requested but torch sees no CUDA GPU"):
            P.resolve_device("cuda")
    assert P.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


def cpu_flags() -> set:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def test_the_real_cpu_calibration_measures_both_dtypes_and_picks_what_the_hardware_has():
    """Expected from the CPU's own flags, not from the code's rule: with AMX tiles bf16 matmuls
    run ~9x fp32 (2,195 vs 153-305 GFLOP/s measured), so auto must pick bf16-true; with neither
    AMX nor AVX512-BF16, bf16 is emulated (~0.3 vs 54 GFLOP/s), so auto must keep fp32. Between
    the two (AVX512-BF16 alone) the ratio decides and only the figures are checked."""
    policy, block = P.resolve("auto", device="cpu")
    figures = block["calibration"]
    assert figures["float32_gflops"] > 0 and figures["bfloat16_gflops"] > 0
    assert f"{figures['bfloat16_gflops'] / figures['float32_gflops']:.2f}x" in block["reason"]
    flags = cpu_flags()
    if "amx_bf16" in flags:
        assert policy.name == "bf16-true", block
    elif not flags & {"avx512_bf16", "amx_bf16"}:
        assert policy.name == "fp32", block


def test_driver_preflight_refuses_cuda_without_a_gpu(monkeypatch):
    from bench.run import hardware

    monkeypatch.setattr(hardware, "cuda_devices", lambda: [])
    with pytest.raises(BenchError, match="torch sees no CUDA device here"):
        hardware.preflight([{"device": "cuda", "precision": "auto"}])
    hardware.preflight([{"device": "auto", "precision": "bf16-true"}])  # auto falls back to cpu: fine
    monkeypatch.setattr(hardware, "cuda_devices", lambda: [("T4", 7, 5, 16 * 2**30)])
    with pytest.raises(BenchError, match="more than the 1 visible GPU"):
        hardware.preflight([{"device": "cuda", "precision": "fp32", "nproc": 2}])
    with pytest.raises(BenchError, match="needs bf16"):
        hardware.preflight([{"device": "auto", "precision": "bf16-mixed"}])
