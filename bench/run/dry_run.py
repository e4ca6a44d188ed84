"""The matrix as it will run, before it runs: `run_bench.py run --dry-run` and the matrix's first ETA.

Per run: model, method, seed, the device and precision it resolves to here (measured in a child,
calibrate), questions per scored task, the planner's train-phase peak against the
memory budget, and the planner's wall time (bench.plan.timing). The data counts after cleaning
come from run_command.check_data, which tokenises each data setting once, as a real run's
pre-flight does. No torch in this process.
"""

import json
import subprocess
import sys
from functools import lru_cache

from bench.run.budget import run_budget
from bench.util.errors import BenchError
from bench.util.units import fmt_bytes


_PROBE = """
import json, sys
from bench.training.precision import FIXED, resolve, resolve_device
from bench.measure.matmul import measure_calibration
device = resolve_device(sys.argv[1])
policy, block = resolve(sys.argv[2], device=device)
rate = measure_calibration(device=device, dtype=policy.compute_dtype, n=512, budget_s=0.5)["matmul_gflops"]
print(json.dumps({"device": device, "precision": policy.name, "reason": block["reason"], "matmul_gflops": rate}))
"""


@lru_cache(maxsize=None)
def calibrate(device: str, precision: str) -> dict:
    """{"device", "precision", "reason", "matmul_gflops"}: the device and precision a run asking for
    `device` and `precision` resolves to here, and the matmul rate of its compute dtype, measured in a
    child (the launcher's process never imports torch)."""
    from bench.run.launcher import child_env
    from bench.util.paths import REPO_ROOT

    done = subprocess.run([sys.executable, "-c", _PROBE, device, precision], capture_output=True, text=True,
                          env=child_env(), cwd=REPO_ROOT, timeout=300)
    if done.returncode != 0:
        raise BenchError(f"cannot resolve device {device!r} and precision {precision!r} here: "
                         f"{(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def resolved(spec: dict) -> dict:
    """The run's resolved device, precision and matmul rate here (calibrate)."""
    return calibrate(spec.get("device") or "auto", spec.get("precision") or "auto")


def estimate(spec: dict) -> dict:
    """{"device", "precision", "seconds" (bench.plan.timing.run_seconds or None), "peak_bytes" (the
    planner's train-phase peak, or None where the planner cannot price the model), "why_not"}."""
    from bench.plan import timing
    from bench.plan.for_run import predict

    where = resolved(spec)
    out = {"device": where["device"], "precision": where["precision"], "seconds": None, "peak_bytes": None,
           "why_not": None}
    config = timing.model_config(spec)
    if config is None:
        out["why_not"] = "no config.json to price"
        return out
    try:
        out["seconds"] = timing.run_seconds(spec=spec, config=config, matmul_gflops=where["matmul_gflops"])
        # before the run: no baseline yet; the precision resolved here, as the worker will
        predicted = predict(spec, config=config, policy=where["precision"], device=where["device"])
        out["peak_bytes"] = predicted["total_bytes"]
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
    from bench.util.progress import clock_text

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
