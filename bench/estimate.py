"""The planner's prediction for the run just measured, put beside what was measured.

Runs in the worker after the train phase: the same options the run used (bench.plan.estimate),
the measured train peak, and the signed error. Nothing here is fitted to the run.
"""

import json
from pathlib import Path


def estimate(spec: dict, record: dict, policy) -> dict:
    """The planner's prediction for this very run, beside what was measured."""
    from bench.plan import estimate as plan_estimate

    config = json.loads((Path(spec["model_path"]) / "config.json").read_text())
    predicted = plan_estimate(config=config, method=spec["method"], seq_len=spec["seq_len"],
                              batch_size=spec["batch_size"], grad_checkpointing=spec["grad_checkpointing"],
                              optimizer=spec["optimizer"], precision=policy.name, kbit_upcast=False,
                              device=spec["device"], lora_r=spec["lora_r"], target_modules=spec["target_modules"],
                              lora_dropout=spec["lora_dropout"], packing=spec["packing"],
                              baseline_bytes=record["memory"]["baseline_bytes"] if spec["device"] == "cpu" else None)
    without_retention(predicted, device=spec["device"], mmap_threshold=spec.get("cpu_malloc_mmap_threshold"))
    measured = record["memory"]["train"]["peak_bytes"]
    predicted["measured_bytes"] = measured
    predicted["error_pct"] = 100.0 * (predicted["total_bytes"] - measured) / measured
    return predicted


def without_retention(predicted: dict, *, device: str, mmap_threshold) -> dict:
    """Drop the CPU allocator term from `predicted` (in place) when the run set
    MALLOC_MMAP_THRESHOLD_: the term models glibc keeping freed blocks resident, which mmap'd
    blocks are not."""
    if device == "cpu" and mmap_threshold and "allocator" in predicted["terms"]:
        predicted["total_bytes"] -= predicted["terms"].pop("allocator")
        predicted.setdefault("notes", []).append("allocator retention term dropped: MALLOC_MMAP_THRESHOLD_ set")
    return predicted
