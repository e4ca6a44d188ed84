"""Optimizer-step timing. Per-step wall times, synchronised on CUDA so they mean compute time."""

import statistics
import time


class StepTimer:
    def __init__(self, device: str):
        self.times_s = []
        self.tokens = []
        self._sync = None
        if device == "cuda":
            import torch

            self._sync = torch.cuda.synchronize

    def start(self) -> None:
        if self._sync:
            self._sync()
        self._t0 = time.perf_counter()

    def stop(self, *, tokens: int) -> None:
        if self._sync:
            self._sync()
        self.times_s.append(time.perf_counter() - self._t0)
        self.tokens.append(tokens)


def throughput(times_s: list, tokens: list, *, warmup_steps: int) -> dict | None:
    """Real tokens per second over the steps after warm-up, with p50/p90 step times."""
    measured, counted = times_s[warmup_steps:], tokens[warmup_steps:]
    if not measured:
        return None
    ordered = sorted(measured)
    return {
        "tokens_per_s": sum(counted) / sum(measured),
        "tokens": sum(counted),
        "steps_measured": len(measured),
        "warmup_steps": warmup_steps,
        "step_time_s": {"p50": statistics.median(measured),
                        "p90": ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))],
                        "mean": statistics.fmean(measured)},
        "step_times_s": list(times_s),
        "tokens_per_step": list(tokens),
    }
