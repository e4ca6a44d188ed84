"""Per-phase peak memory, with the peak reset at each phase start.

CPU: the process's resident high-water mark (VmHWM). Writing "5" to /proc/self/clear_refs
resets it to the current RSS (after gc and malloc_trim hand freed memory back), so each
phase reports its own peak, which still includes everything resident from earlier phases.
CUDA: torch's peak allocated/reserved/active since reset_peak_memory_stats on the run's own
device (`cuda:LOCAL_RANK` under torchrun), plus NVML's figures for that same physical GPU
(bench.measure.nvml): the device-wide used memory and this process's own, read at the phase end
beside torch's reserved memory at that moment (NVML keeps no peak). Usage:

    tracker = memory_tracker("cpu")
    with tracker.track("train"):
        ...
    tracker.phases["train"]["peak_bytes"]
"""

import ctypes
import gc
import resource
import time
from contextlib import contextmanager
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_bytes(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """Current resident set size."""
    return _status_bytes("VmRSS") or 0


def peak_rss_bytes() -> int:
    """Resident high-water mark since the last reset (or process start)."""
    hwm = _status_bytes("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def release_memory() -> None:
    """Collect garbage and return freed heap pages to the OS, so a reset starts from live memory."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS. False where the kernel offers no reset (not Linux)."""
    release_memory()
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


class CpuMemoryTracker:
    device = "cpu"

    def __init__(self):
        self.phases = {}
        self._earlier_peak = 0

    def lifetime_peak_bytes(self) -> int:
        """The process's peak since it started. Each reset also resets ru_maxrss (so wait4 in the
        parent only sees the last phase's peak): keep the high-water mark read before each reset."""
        return max(self._earlier_peak, peak_rss_bytes())

    @contextmanager
    def track(self, phase: str):
        self._earlier_peak = self.lifetime_peak_bytes()
        reset_ok = reset_peak_rss()
        start = time.perf_counter()
        figures = {"start_bytes": rss_bytes(), "peak_reset": reset_ok}
        self.phases[phase] = figures
        try:
            yield figures
        finally:
            figures["peak_bytes"] = peak_rss_bytes()
            figures["end_bytes"] = rss_bytes()
            figures["wall_s"] = time.perf_counter() - start


class CudaMemoryTracker:
    device = "cuda"

    def __init__(self, device: str = "cuda"):
        import torch

        from bench.measure.nvml import Probe

        self.torch = torch
        self.ordinal = torch.device(device).index
        if self.ordinal is None:
            self.ordinal = torch.cuda.current_device()
        self.nvml = Probe(torch=torch, ordinal=self.ordinal)
        self.phases = {}
        self._host = CpuMemoryTracker()

    def lifetime_peak_bytes(self) -> int:
        """Host RSS peak of the whole process (device peaks are per phase)."""
        return self._host.lifetime_peak_bytes()

    def context_bytes(self) -> int | None:
        """Device memory this process holds outside torch's caching allocator (the CUDA context,
        kernels and library workspaces), per NVML: its process figure minus torch's reserved."""
        self.torch.cuda.synchronize(self.ordinal)
        self.torch.cuda.empty_cache()
        used = self.nvml.read().get("nvml_process_bytes")
        return None if used is None else used - self.torch.cuda.memory_reserved(self.ordinal)

    @contextmanager
    def track(self, phase: str):
        torch, ordinal = self.torch, self.ordinal
        release_memory()
        torch.cuda.synchronize(ordinal)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(ordinal)
        self._host._earlier_peak = self._host.lifetime_peak_bytes()
        reset_peak_rss()
        start = time.perf_counter()
        figures = {"start_bytes": torch.cuda.memory_reserved(ordinal)}
        self.phases[phase] = figures
        try:
            yield figures
        finally:
            torch.cuda.synchronize(ordinal)
            stats = torch.cuda.memory_stats(ordinal)
            figures.update(
                peak_bytes=torch.cuda.max_memory_reserved(ordinal),
                allocated_peak_bytes=torch.cuda.max_memory_allocated(ordinal),
                reserved_peak_bytes=torch.cuda.max_memory_reserved(ordinal),
                active_peak_bytes=stats.get("active_bytes.all.peak", 0),
                reserved_end_bytes=torch.cuda.memory_reserved(ordinal),
                **self.nvml.read(),
                host_peak_rss_bytes=peak_rss_bytes(),
                wall_s=time.perf_counter() - start,
            )


def memory_tracker(device: str):
    """The tracker for `device`: "cpu", "cuda" (the current device) or "cuda:N"."""
    return CudaMemoryTracker(device) if device.startswith("cuda") else CpuMemoryTracker()
