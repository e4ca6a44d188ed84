"""What device a run will use, decided in the parent through NVML (no torch import)."""

from functools import lru_cache


@lru_cache(maxsize=1)
def cuda_devices() -> list:
    """[(name, compute capability major, minor, total bytes)] per visible NVIDIA GPU; [] without one."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return []
    devices = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
        name = pynvml.nvmlDeviceGetName(handle)
        devices.append((name.decode() if isinstance(name, bytes) else name, major, minor,
                        pynvml.nvmlDeviceGetMemoryInfo(handle).total))
    return devices


def resolve_device(requested: str) -> str:
    if requested != "auto":
        return requested
    return "cuda" if cuda_devices() else "cpu"


def resolve_dtype(requested: str, device: str) -> str:
    """float32 on CPU (bf16 matmul is ~35x slower on this kind of CPU); bf16 on sm80+, else fp16."""
    if requested != "auto":
        return requested
    if device == "cpu":
        return "float32"
    devices = cuda_devices()
    return "bfloat16" if devices and devices[0][1] >= 8 else "float16"
