"""The precision policy: one setting that fixes every dtype of a run, for every method alike.

    fp32        weights, compute, gradients and optimizer states in float32
    bf16-true   weights and compute in bfloat16; AdamW steps the bf16 weights directly
                (as torchtune and PEFT's method comparison run)
    bf16-mixed  float32 master weights; forward and backward under bfloat16 autocast
    fp16-mixed  float32 master weights; float16 autocast and a GradScaler (loss scaling)
    auto        CUDA sm80+: bf16-true; older CUDA: fp16-mixed; CPU: bf16-true when a short matmul
                calibration on this machine shows bf16 at least BF16_MARGIN x faster than fp32,
                else fp32 (CPUs of one kind differ: AVX2-only ones run bf16 matmul ~35x slower,
                AMX ones ~10x faster; measure, never assume)

Matched across methods (docs/precision.md): no method gets peft's k-bit fp32 upcast of
embeddings, norms and lm_head, so LoRA, DoRA, QLoRA and 8-bit LoRA keep those in the policy's
weight dtype and differ only in the quantised linears. Adapters are float32 under every policy
(peft's default autocast_adapter_dtype). Quantised linears compute in `compute_dtype`.

`resolve` runs in the worker, on the machine that trains; the record states what it chose and why.
"""

from contextlib import nullcontext
from dataclasses import asdict, dataclass

from bench.util.errors import BenchError

POLICIES = ("auto", "fp32", "bf16-true", "bf16-mixed", "fp16-mixed")
BF16_MARGIN = 1.25  # auto on CPU picks bf16 only when clearly faster: a near-tie must not flip between runs
ADAPTER_DTYPE = "float32"


@dataclass(frozen=True)
class Policy:
    name: str
    weights_dtype: str          # dtype the model's unquantised weights are loaded, trained and stored in
    autocast_dtype: str | None  # forward/backward autocast, None for none
    grad_scaler: bool           # fp16 loss scaling

    @property
    def compute_dtype(self) -> str:
        """The dtype matmuls run in (and bitsandbytes' 4-bit compute dtype)."""
        return self.autocast_dtype or self.weights_dtype


FIXED = {
    "fp32": Policy("fp32", "float32", None, False),
    "bf16-true": Policy("bf16-true", "bfloat16", None, False),
    "bf16-mixed": Policy("bf16-mixed", "float32", "bfloat16", False),
    "fp16-mixed": Policy("fp16-mixed", "float32", "float16", True),
}


def resolve_device(requested: str) -> str:
    """auto -> cuda when torch sees a GPU here, else cpu; an impossible request is a BenchError."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise BenchError("device 'cuda' requested but torch sees no CUDA GPU on this machine; valid choices: auto, cpu")
    return requested


def resolve(requested: str, *, device: str, calibrate=None) -> tuple:
    """(Policy, record block) for `requested` on `device`. `calibrate(dtype) -> GFLOP/s` measures a
    matmul on this device; it is called only for CPU auto. Raises BenchError for a policy the
    device cannot run."""
    if requested not in POLICIES:
        raise BenchError(f"unknown precision {requested!r}; valid choices: {', '.join(POLICIES)}")
    figures = None
    if requested != "auto":
        policy, reason = FIXED[requested], "requested"
    elif device == "cuda":
        major = _cuda_major()
        policy = FIXED["bf16-true" if major >= 8 else "fp16-mixed"]
        reason = f"auto: CUDA compute capability {major}.x {'>=' if major >= 8 else '<'} 8.0 (bf16 tensor cores)"
    else:
        calibrate = calibrate or _cpu_gflops
        figures = {"float32_gflops": calibrate("float32"), "bfloat16_gflops": calibrate("bfloat16")}
        ratio = figures["bfloat16_gflops"] / figures["float32_gflops"]
        policy = FIXED["bf16-true" if ratio >= BF16_MARGIN else "fp32"]
        reason = (f"auto: bf16 matmul measured at {ratio:.2f}x fp32 on this CPU "
                  f"({'>=' if ratio >= BF16_MARGIN else '<'} {BF16_MARGIN}x)")
    check_supported(policy, device=device)
    return policy, describe(policy, requested=requested, reason=reason, calibration=figures)


def describe(policy: Policy, *, requested: str, reason: str, calibration=None) -> dict:
    """The record's `precision` block."""
    return {"requested": requested, "policy": policy.name, "reason": reason,
            **{k: v for k, v in asdict(policy).items() if k != "name"},
            "compute_dtype": policy.compute_dtype, "adapter_dtype": ADAPTER_DTYPE,
            "kbit_upcast": False, "calibration": calibration}


def check_supported(policy: Policy, *, device: str) -> None:
    if device != "cuda" or policy.compute_dtype != "bfloat16":
        return
    major = _cuda_major()
    if major < 8:
        raise BenchError(f"precision {policy.name} needs bf16 support (CUDA compute capability >= 8.0), this GPU is "
                         f"{major}.x; valid choices here: fp32, fp16-mixed, auto")


def _cuda_major() -> int:
    import torch

    return torch.cuda.get_device_capability()[0]


def _cpu_gflops(dtype: str) -> float:
    from bench.measure.matmul import measure_calibration

    return measure_calibration(device="cpu", dtype=dtype, n=512, budget_s=0.3)["matmul_gflops"]


def autocast(policy: Policy, device: str):
    """The forward/backward context for `policy` (a no-op unless it is a mixed policy)."""
    if policy.autocast_dtype is None:
        return nullcontext()
    import torch

    return torch.autocast(device_type=device.split(":")[0], dtype=getattr(torch, policy.autocast_dtype))


def grad_scaler(policy: Policy, device: str):
    """A torch.amp.GradScaler for fp16-mixed, else None."""
    if not policy.grad_scaler:
        return None
    import torch

    return torch.amp.GradScaler(device.split(":")[0])


def apply(spec: dict, policy: Policy) -> dict:
    """The spec with the policy's resolved dtypes, as bench.training.methods reads them."""
    return dict(spec, precision=policy.name, weights_dtype=policy.weights_dtype, compute_dtype=policy.compute_dtype)
