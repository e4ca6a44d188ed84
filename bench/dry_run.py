"""The matrix as it will run, before it runs: `run_bench.py run --dry-run` and the matrix's first ETA.

Per run: model, method, seed, the device and precision it resolves to here (measured in a child,
bench.plan.timing.calibrate), questions per scored task, the planner's train-phase peak against the
memory budget, and the planner's wall time (bench.plan.timing). The data counts after cleaning
come from run_command.check_data, which tokenises each data setting once, as a real run's
pre-flight does. No torch in this process.
"""

from bench.budget import run_budget
from bench.errors import BenchError
from bench.units import fmt_bytes


def resolved(spec: dict) -> dict:
    """The run's resolved device, precision and matmul rate here (bench.plan.timing.calibrate)."""
    from bench.plan import timing

    return timing.calibrate(spec.get("device") or "auto", spec.get("precision") or "auto")


def estimate(spec: dict) -> dict:
    """{"device", "precision", "seconds" (bench.plan.timing.run_seconds or None), "peak_bytes" (the
    planner's train-phase peak, or None where the planner cannot price the model), "why_not"}."""
    from bench.plan import estimate as plan_estimate, timing
    from bench.plan.options import from_run
    from bench.plan.predict import without_retention

    where = resolved(spec)
    out = {"device": where["device"], "precision": where["precision"], "seconds": None, "peak_bytes": None,
           "why_not": None}
    config = timing.model_config(spec)
    if config is None:
        out["why_not"] = "no config.json to price"
        return out
    try:
        out["seconds"] = timing.run_seconds(spec=spec, config=config, matmul_gflops=where["matmul_gflops"])
        options = from_run(spec, policy=where["precision"], device=where["device"])  # before the run: no baseline
        predicted = plan_estimate(config=config, method=spec["method"], **options)
        out["peak_bytes"] = without_retention(predicted, device=options["device"],  # as the worker's estimate
                                              mmap_threshold=spec.get("cpu_malloc_mmap_threshold"))["total_bytes"]
    except (BenchError, KeyError, TypeError, ValueError) as exc:  # a config the planner cannot price (a family
        out["why_not"] = f"{exc.__class__.__name__}: {exc}"            # it does not know): the run itself may work
    return out


def seconds_by_run(specs: list) -> dict:
    """{spec_hash: estimated seconds} for the runs the planner can price (the ETA's prior)."""
    out = {}
    for spec in specs:
        try:
            found = estimate(spec)["seconds"]
        except BenchError:
            continue
        if found:
            out[spec["spec_hash"]] = found["total_s"]
    return out


def render(specs: list) -> str:
    """The dry run's table: one row per run, then the total."""
    import pandas as pd

    from bench.plan.timing import questions
    from bench.progress import clock_text

    rows, total = [], 0.0
    for spec in specs:
        found = estimate(spec)
        given = run_budget(spec, device=found["device"])  # --max-memory, else the default CPU budget
        budget = given["bytes"] if given else None
        peak = found["peak_bytes"]
        seconds = found["seconds"]
        total += seconds["total_s"] if seconds else 0.0
        rows.append({
            "model": spec["model"], "method": spec["method"], "seed": spec["seed"],
            "device": found["device"], "precision": found["precision"],
            "questions": ", ".join(f"{t.removeprefix('ftbench_')} {n:,}" if n else t
                                   for t, n in questions(spec).items()) or "none",
            "planned peak": fmt_bytes(peak) if peak else "?",
            "budget": ("none" if budget is None else fmt_bytes(budget)
                       + (" (over)" if peak and peak > budget else "")),
            "est. time": clock_text(seconds["total_s"]) if seconds else "?",
        })
    lines = [pd.DataFrame(rows).to_string(index=False)]
    lines.append(f"estimated total: {clock_text(total)} for {len(specs)} run(s), one at a time "
                 f"(train and eval from the matmul rate measured now; see bench/plan/timing.py)")
    for spec, row in zip(specs, rows):
        if "(over)" in row["budget"]:
            lines.append(f"warning: {spec['model']} x {spec['method']}: the planner's peak {row['planned peak']} "
                         f"exceeds the budget {row['budget'].removesuffix(' (over)')}: it will likely end as oom")
    return "\n".join(lines)
