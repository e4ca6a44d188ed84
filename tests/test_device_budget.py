"""`--max-memory` on CUDA bounds the whole device, as `plan --frontier` does: torch's pool gets
the budget less the context, and a train phase whose reserved peak plus what sat outside torch
(context, paged optimizer state, NCCL) exceeds the budget is out of memory. Figures are fakes of
the CUDA tracker's; no GPU here."""

import pytest

from bench.measure import device_budget as D
from bench.results.failure import classify
from bench.run.fit.probe import Job

MiB, GiB = 2**20, 2**30
ASSUMED = 768 * MiB


def phase(*, reserved_peak, reserved_end, nvml=None):
    return {"peak_bytes": reserved_peak, "reserved_end_bytes": reserved_end, "nvml_process_bytes": nvml}


def test_the_pool_is_the_budget_less_the_context():
    assert D.pool_fraction(budget_bytes=24 * GiB, total_bytes=80 * GiB, outside_bytes=ASSUMED) == \
        pytest.approx((24 * GiB - ASSUMED) / (80 * GiB))
    assert D.pool_fraction(budget_bytes=200 * GiB, total_bytes=80 * GiB, outside_bytes=ASSUMED) == 1.0
    assert D.pool_fraction(budget_bytes=100 * MiB, total_bytes=80 * GiB, outside_bytes=ASSUMED) > 0


def test_a_peak_that_fits_torch_but_not_the_device_is_oom():
    """A 21 GiB reserved peak fits torch's pool under a 24 GiB budget; with 3.5 GiB outside torch
    (NVML: 23.5 GiB for the process, 20 GiB reserved at the phase end) the device needed 24.5."""
    figures = phase(reserved_peak=21 * GiB, reserved_end=20 * GiB, nvml=int(23.5 * GiB))
    with pytest.raises(D.DeviceBudgetExceeded,
                       match="device peak 25,088 MiB .* exceeds --max-memory 24,576 MiB") as caught:
        D.check(figures, budget_bytes=24 * GiB, context_bytes=None, assumed_context_bytes=ASSUMED)
    assert classify(caught.value) == "oom"                        # fit reads it as "does not fit"
    assert figures["device_peak_bytes"] == 24.5 * GiB and figures["outside_from"] == "nvml"


def test_without_nvml_the_context_and_paged_state_are_added():
    figures = phase(reserved_peak=20 * GiB, reserved_end=20 * GiB)
    got = D.check(figures, budget_bytes=24 * GiB, context_bytes=600 * MiB, assumed_context_bytes=ASSUMED,
                  paged_bytes=2 * GiB)
    assert got["device_peak_bytes"] == 20 * GiB + 600 * MiB + 2 * GiB and "measured context" in got["outside_from"]
    got = D.device_peak(figures, context_bytes=None, assumed_context_bytes=ASSUMED)
    assert got["outside_torch_bytes"] == ASSUMED and got["outside_from"].startswith("assumed")


def test_fit_predicts_the_whole_device_on_cuda(monkeypatch):
    """Before, fit compared the budget with max_memory_reserved (total_bytes) while the frontier
    used device_bytes: on CUDA the two searches answered different questions."""
    job = Job(model="tiny-llama", method="lora", memory="1GiB", budget=GiB, profile="smoke", steps=3, seq_len=64)
    est = {"total_bytes": 100, "device_bytes": 900}
    monkeypatch.setattr(Job, "estimate", lambda self, n: est)
    monkeypatch.setattr(Job, "device", lambda self: "cuda")
    assert job.predicted_bytes(1) == 900
    monkeypatch.setattr(Job, "device", lambda self: "cpu")
    assert job.predicted_bytes(1) == 100
