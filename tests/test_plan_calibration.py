"""The CPU model against train-phase peaks measured on this machine (2026-11, smollm2-135m,
fp32, torch AdamW, r=8 all-linear, 2 steps, mmap disabled; bench/plan/calibrate_cpu.py).
The allocator fraction was fitted to these same runs, so this guards against regressions;
the harness's records are the held-out check (docs/plan.md)."""

import pytest

from bench.plan import estimate, presets

# (method, checkpointing, batch, seq, measured train-phase peak RSS in bytes)
MEASURED = [
    ("full", False, 4, 128, 3_558_060_032),
    ("lora", False, 4, 128, 2_716_860_416),
    ("qlora", False, 4, 128, 2_407_034_880),
    ("lora8", False, 4, 128, 2_375_507_968),
    ("dora", False, 4, 128, 3_519_172_608),
    ("full", True, 4, 128, 3_309_625_344),
    ("lora", True, 4, 128, 1_977_868_288),
    ("lora", False, 2, 512, 4_255_334_400),
]


@pytest.mark.parametrize("method,ckpt,batch,seq,measured", MEASURED)
def test_cpu_prediction_within_15_percent(method, ckpt, batch, seq, measured):
    out = estimate(config=presets.load("smollm2-135m")[1], method=method, seq_len=seq, batch_size=batch,
                   grad_checkpointing=ckpt, optimizer="adamw_torch", compute_dtype="float32",
                   device="cpu", lora_r=8)
    assert abs(out["total_bytes"] - measured) / measured <= 0.15
