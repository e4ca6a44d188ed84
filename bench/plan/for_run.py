"""The planner's prediction for the run just measured, put beside what was measured.

Runs in the worker after the train phase: the same options the run used (bench.plan.estimate),
the measured train peak, and the signed error. Nothing here is fitted to the run.
"""

import json
from pathlib import Path


def estimate(spec: dict, record: dict, policy) -> dict:
    """The planner's prediction for this very run, beside what was measured."""
    from bench.plan import estimate as plan_estimate
    from bench.plan.options import from_run
    from bench.plan.predict import without_retention

    config = json.loads((Path(spec["model_path"]) / "config.json").read_text())
    options = from_run(spec, policy=policy.name, baseline_bytes=record["memory"]["baseline_bytes"])
    predicted = plan_estimate(config=config, method=spec["method"], **options)
    without_retention(predicted, device=options["device"], mmap_threshold=spec.get("cpu_malloc_mmap_threshold"))
    measured = record["memory"]["train"]["peak_bytes"]
    predicted["measured_bytes"] = measured
    predicted["error_pct"] = 100.0 * (predicted["total_bytes"] - measured) / measured
    return predicted
