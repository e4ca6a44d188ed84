"""The planner's prediction for one run: before it runs (`predict`: the driver's budget check and
`--dry-run`) and for the run just measured, put beside what was measured (`estimate`, in the
worker after the train phase: the measured train peak and the signed error). Nothing here is
fitted to the run.
"""

import json
from pathlib import Path


def predict(spec: dict, *, config: dict, policy: str = None, device: str = None, baseline_bytes: int = None) -> dict:
    """bench.plan.estimate for a spec, with the options every caller gives it (bench.plan.options.from_run)
    and without the CPU allocator term when the run sets MALLOC_MMAP_THRESHOLD_ (as the run will have)."""
    from bench.plan import estimate as plan_estimate
    from bench.plan.options import from_run
    from bench.plan.predict import without_retention

    options = from_run(spec, policy=policy, device=device, baseline_bytes=baseline_bytes)
    predicted = plan_estimate(config=config, method=spec["method"], **options)
    return without_retention(predicted, device=options["device"], mmap_threshold=spec.get("cpu_malloc_mmap_threshold"))


def estimate(spec: dict, record: dict, policy) -> dict:
    """The planner's prediction for this very run, beside what was measured."""
    config = json.loads((Path(spec["model_path"]) / "config.json").read_text())
    predicted = predict(spec, config=config, policy=policy.name, baseline_bytes=record["memory"]["baseline_bytes"])
    measured = record["memory"]["train"]["peak_bytes"]
    predicted["measured_bytes"] = measured
    predicted["error_pct"] = 100.0 * (predicted["total_bytes"] - measured) / measured
    return predicted
