"""What the driver can know of this machine's GPUs, through NVML (no torch import)."""

import os
from functools import lru_cache

from bench.measure.nvml import visible_devices, visible_handles


def cuda_devices() -> list:
    """[(name, compute capability major, minor, total bytes)] per NVIDIA GPU this process may use
    (CUDA_VISIBLE_DEVICES honoured, in CUDA's order); [] without one."""
    return _cuda_devices(os.environ.get("CUDA_VISIBLE_DEVICES"))


@lru_cache(maxsize=4)
def _cuda_devices(visible_env: str | None) -> list:
    try:
        import pynvml

        pynvml.nvmlInit()
        handles = visible_handles(pynvml, visible_devices(visible_env))
    except Exception:
        return []
    devices = []
    for handle in handles:
        major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
        name = pynvml.nvmlDeviceGetName(handle)
        devices.append((name.decode() if isinstance(name, bytes) else name, major, minor,
                        pynvml.nvmlDeviceGetMemoryInfo(handle).total))
    return devices


def preflight(specs: list) -> None:
    """Driver-side checks for runs that execute on this machine (the local executor), through NVML
    without torch: a CUDA request without a GPU, more ranks than GPUs, bf16 on a GPU before sm80.
    The worker checks again where it runs (a Ray or Slurm node may differ from the driver)."""
    from bench.errors import BenchError

    devices = cuda_devices()
    for spec in specs:
        if spec["device"] == "cuda" and not devices:
            raise BenchError("device 'cuda' requested but no NVIDIA GPU is visible; valid choices: auto, cpu")
        if spec["device"] == "cpu" or not devices:
            continue
        if spec.get("nproc", 1) > len(devices):
            raise BenchError(f"--nproc {spec['nproc']} is more than the {len(devices)} visible GPU(s); "
                             f"valid choices: 1 to {len(devices)}")
        oldest = min(d[1] for d in devices)
        if spec["precision"] in ("bf16-true", "bf16-mixed") and oldest < 8:
            raise BenchError(f"precision {spec['precision']} needs bf16 (CUDA compute capability >= 8.0); this GPU is "
                             f"{oldest}.x; valid choices here: auto, fp32, fp16-mixed")


def runs_on_cpu(spec: dict) -> bool:
    """Whether a run started here will compute on the CPU: device cpu, or auto with no GPU
    visible (the worker resolves auto the same way, through torch). Decides whether a memory
    budget is the child's data-segment limit (CPU) or a CUDA memory fraction (the worker's)."""
    return spec["device"] == "cpu" or (spec["device"] == "auto" and not cuda_devices())
