"""`--max-memory` on CUDA as a budget for the whole device, the one `plan --frontier` checks.

torch's `set_per_process_memory_fraction` caps only torch's caching allocator. What a real card
must also hold sits outside it: the CUDA context and library workspaces, bitsandbytes' paged
optimizer state (CUDA managed memory) and NCCL's buffers. The planner's `device_bytes` counts all
of them, so `fit` and the frontier agree only if a run's budget does too:
  1. before the model loads, torch's pool is capped at the budget less the context the planner
     assumes (bench.plan.predict.CUDA_CONTEXT_BYTES): a run cannot even reserve more than could fit;
  2. after the train phase, the phase's whole-device peak is torch's reserved peak plus what the
     process held outside torch at the phase end (NVML's figure for this process less torch's
     reserved; without NVML, the measured context, or the assumed one, plus bitsandbytes' paged
     tensors), and a peak above the budget fails the run as out of memory (`DeviceBudgetExceeded`
     is a MemoryError: status `oom`), with every figure kept in the record.
Nothing here imports torch; callers pass figures.
"""

from bench.util.units import mib


class DeviceBudgetExceeded(MemoryError):
    """The phase fitted torch's pool but not the device: out of memory for `fit` and the record."""


def pool_fraction(*, budget_bytes: int, total_bytes: int, outside_bytes: int) -> float:
    """The fraction of the card torch's allocator may reserve: the budget less what must sit
    outside torch, never above the whole card, never zero."""
    return max(1e-3, min(1.0, (budget_bytes - outside_bytes) / total_bytes))


def device_peak(figures: dict, *, context_bytes: int | None, assumed_context_bytes: int,
                paged_bytes: int = 0) -> dict:
    """{"device_peak_bytes", "outside_torch_bytes", "outside_from"} for one phase's figures
    (bench.measure.memory's CUDA tracker: peak_bytes = max reserved, reserved_end_bytes,
    nvml_process_bytes when NVML gave it)."""
    nvml, reserved_end = figures.get("nvml_process_bytes"), figures.get("reserved_end_bytes")
    if isinstance(nvml, int) and isinstance(reserved_end, int):
        outside, source = max(0, nvml - reserved_end), "nvml"
    elif isinstance(context_bytes, int):
        outside, source = context_bytes + paged_bytes, "measured context + paged tensors"
    else:
        outside, source = assumed_context_bytes + paged_bytes, "assumed context + paged tensors"
    return {"device_peak_bytes": figures["peak_bytes"] + outside, "outside_torch_bytes": outside,
            "outside_from": source}


def check(figures: dict, *, budget_bytes: int, **kw) -> dict:
    """device_peak(figures, **kw), stored into `figures`; raise DeviceBudgetExceeded above the budget."""
    peak = device_peak(figures, **kw)
    figures.update(peak)
    if peak["device_peak_bytes"] > budget_bytes:
        raise DeviceBudgetExceeded(
            f"CUDA out of memory for the budget: the train phase's device peak {mib(peak['device_peak_bytes']):,.0f} "
            f"MiB (torch reserved {mib(figures['peak_bytes']):,.0f} MiB + {mib(peak['outside_torch_bytes']):,.0f} "
            f"MiB outside torch, from {peak['outside_from']}) exceeds --max-memory {mib(budget_bytes):,.0f} MiB")
    return peak


def paged_bytes() -> int:
    """Bytes of bitsandbytes' paged tensors (its paged optimizers' state), 0 without bitsandbytes."""
    try:
        from bitsandbytes.functional import GlobalPageManager
    except Exception:
        return 0
    tensors = getattr(GlobalPageManager.get_instance(), "paged_tensors", []) or []
    return int(sum(t.numel() * t.element_size() for t in tensors))
