"""`run_bench.py fit --models M --methods X [Y ...] --memory 6GiB [--seq-len N | --batch-size B]`:
the largest batch (or, with --batch-size, the longest sequence) that really trains under a budget.

Every probe is a real run in a child under `--max-memory` (CPU: the launcher's data-segment
limit; CUDA: a memory fraction), a few steps, no scoring and no breakdown, appended to
OUT/results.jsonl like any record (a point that does not fit is an `oom` record). The search
starts at the planner's predicted largest fit and bisects (bench.run.fit.search). At the end: per
method the measured largest fit beside the planner's, and how often the planner's verdict agreed
with the measured one over the probed points. OUT/fit.json keeps the table.
"""

import json
import sys
import time
from pathlib import Path

from bench.method_table import TRAINED
from bench.run import budget
from bench.run.fit import search
from bench.run.hardware import runs_on_cpu
from bench.run.preflight import check_data
from bench.util.errors import BenchError
from bench.util.paths import REPO_ROOT
from bench.util.units import mib, parse_size

MAX_BATCH = 4096
SEQ_STEP = 8  # sequence lengths are searched on a grid of 8 tokens


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("fit", help="measure the largest batch (or sequence) that trains under a memory budget",
                              description="Measure the largest batch (or, with --batch-size, the longest sequence) "
                                          "that trains under a memory budget, with real runs, beside the planner's "
                                          "prediction.")
    p.add_argument("--models", nargs="+", required=True,
                   help="smollm2-135m, tiny-llama, shape:NAME (a planner preset or config.json, random weights) "
                        "or a local model directory")
    p.add_argument("--methods", nargs="+", required=True, help=" ".join(TRAINED))
    p.add_argument("--memory", required=True, help="budget per run, e.g. 6GiB (becomes each probe's --max-memory)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--seq-len", type=int, help="fixed sequence length; search the batch (default: the profile's)")
    size.add_argument("--batch-size", type=int, help="fixed batch; search the sequence length")
    p.add_argument("--steps", type=int, default=3, help="optimizer steps per probe (default 3)")
    p.add_argument("--profile", default="default", help="profile the probes start from (default: default)")
    p.add_argument("--out", type=Path, help="output directory (default: reports/fit)")
    p.set_defaults(func=run)


def run(args) -> int:
    from bench.run.fit import probe

    budget_bytes = parse_size(args.memory)
    bad = [m for m in args.methods if m not in TRAINED]
    if bad:
        raise BenchError(f"unknown method {bad[0]!r} for fit; valid choices: {', '.join(TRAINED)}")
    for name, value in (("--seq-len", args.seq_len), ("--batch-size", args.batch_size), ("--steps", args.steps)):
        if value is not None and value <= 0:
            raise BenchError(f"{name} must be a positive integer, got {value}")
    jobs = [probe.Job(model=m, method=x, memory=args.memory, budget=budget_bytes, profile=args.profile,
                      steps=args.steps, seq_len=args.seq_len, batch_size=args.batch_size)
            for m in dict.fromkeys(args.models) for x in dict.fromkeys(args.methods)]
    for job in jobs:  # bad input before any run: a budget below the weights alone,
        job.check_weights()
    budget.check([jobs[0].spec(1)], on_cpu=runs_on_cpu)  # or below what a run needs to start,
    if jobs[0].searching == "batch":  # or data that cannot train at the fixed sequence length
        check_data([job.spec(1) for job in jobs])
    out_dir = (args.out or REPO_ROOT / "reports" / "fit").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    clock = Clock(total_jobs=len(jobs))
    rows = [_search(job, out_dir=out_dir, clock=clock) for job in jobs]
    print(render(rows, budget_text=args.memory))
    (out_dir / "fit.json").write_text(json.dumps(rows, indent=1))
    print(f"results: {out_dir / 'results.jsonl'}")
    failed = [r for r in rows if r["probe_failed"]]
    if failed:  # a run that broke for another reason than memory: not bad input, a failure
        print(f"ftbench: error: {failed[0]['error']}", file=sys.stderr)
        return 1
    impossible = [r for r in rows if r["error"]]
    if impossible:
        raise BenchError(impossible[0]["error"])
    return 0


def _search(job, *, out_dir: Path, clock) -> dict:
    step, low, cap = (1, 1, MAX_BATCH) if job.searching == "batch" else (SEQ_STEP, SEQ_STEP, job.max_seq())
    start = job.predicted_largest(low=low, cap=cap, step=step) or low
    records = {}

    def probe(n):
        began = time.perf_counter()
        record = job.run(n, out_dir=out_dir)
        records[n] = record
        clock.done(time.perf_counter() - began)
        fits = record["status"] == "ok"
        if record["status"] == "error" and "supervised token" in (record["error"] or ""):
            raise DataFloor(record["error"])  # a sequence too short for the data, reached only going down
        if record["status"] not in ("ok", "oom"):
            raise ProbeFailed(f"{job.label(n)}: {record['status']}: {record['error']}")
        found.append((n, fits))
        peak, what = measured_peak(record)
        print(f"  [{clock.runs}] {job.label(n)}: {'fits' if fits else 'oom'}"
              + (f", {what} {mib(peak):,.0f} MiB" if peak else "") + f" ({clock.last:.0f} s)"
              + clock.eta(search.remaining_probes(found, step=step)), flush=True)
        return fits

    found = []
    try:
        result = search.largest(probe=probe, start=start, low=low, cap=cap, step=step)
    except ProbeFailed as exc:
        return _row(job, largest=None, probes=found, error=f"probe failed, search stopped: {exc}", failed=True,
                    records=records)
    except DataFloor as exc:  # nothing above fitted: the shortest the data allows is the smallest point
        if not found:
            return _row(job, largest=0, probes=found, records=records,
                        error=f"{job.model} x {job.method}: the search's first point is too short for the data: {exc}")
        result, low = {"largest": 0, "capped": False}, min(n for n, _ in found)
        note = f"; shorter sequences leave the data unsupervised ({exc})"
    else:
        note = ""
    finally:
        clock.next_job(len(found))
    error = None
    if result["largest"] == 0:
        peak, what = measured_peak(records[low])
        error = (f"{job.model} x {job.method}: the smallest point ({job.label(low)}) already fails under "
                 f"{job.memory}: measured {what} {mib(peak or 0):,.0f} MiB ({records[low]['error'][:160]}){note[:300]}")
    return _row(job, largest=result["largest"], probes=found, error=error, capped=result["capped"],
                predicted=job.predicted_largest(low=low, cap=cap, step=step), records=records)


def measured_peak(record: dict) -> tuple:
    """(bytes or None, what they are): the figure a probe's budget bounds, as the worker checks it.
    CUDA: the device peak (torch's reserved peak plus what the process held outside torch,
    bench.measure.device_budget; torch's reserved peak where the check did not run), never the
    host's RSS. CPU: the train phase's peak RSS, else the whole process's."""
    memory = record["memory"]
    train = memory.get("train") or {}
    if memory.get("device") == "cuda":
        reserved = [(memory.get(p) or {}).get("peak_bytes") or 0 for p in ("load", "train")]
        return train.get("device_peak_bytes") or max(reserved) or None, "device peak"
    return train.get("peak_bytes") or memory.get("process_peak_bytes"), "peak RSS"


class ProbeFailed(Exception):
    """A probe ended neither ok nor oom (error, crash, timeout): the search cannot go on."""


class DataFloor(Exception):
    """A probe's sequence length leaves too many examples without a supervised token."""


def _row(job, *, largest, probes, error, records, capped=False, predicted=None, failed=False) -> dict:
    return {"model": job.model, "method": job.method, "searched": job.searching, "fixed": job.fixed_text(),
            "memory": job.memory, "measured_largest": largest, "capped": capped, "predicted_largest": predicted,
            "probes": [{"n": n, "fits": ok, "predicted_fits": job.predicted_fits(n),
                        "predicted_bytes": job.predicted_bytes(n), "run_id": records[n]["run_id"],
                        "train_peak_bytes": (records[n]["memory"].get("train") or {}).get("peak_bytes")}
                       for n, ok in probes],
            "agreement": search.agreement(probes, job.predicted_fits), "error": error, "probe_failed": failed}


class Clock:
    """Runs done, mean run time, and an ETA over the rest of the search (an estimate of the probes left)."""

    def __init__(self, *, total_jobs: int):
        self.total_jobs, self.jobs_done, self.runs, self.durations, self.last = total_jobs, 0, 0, [], 0.0
        self.per_job = []

    def done(self, seconds: float) -> None:
        self.runs += 1
        self.last = seconds
        self.durations.append(seconds)

    def next_job(self, probes: int) -> None:
        self.jobs_done += 1
        self.per_job.append(probes)

    def eta(self, left_in_job: int) -> str:
        later = self.total_jobs - self.jobs_done - 1
        per_job = sum(self.per_job) / len(self.per_job) if self.per_job else 6
        left = (left_in_job + later * per_job) * sum(self.durations) / len(self.durations)
        return f"  ETA {int(left // 60)}m{int(left % 60):02d}s" if left else ""


def render(rows, *, budget_text: str) -> str:
    """The final table: measured largest fit beside the planner's, and the agreement counts."""
    head = ["model", "method", "searched", "measured", "planner", "probes", "fit/fit", "fit/oom", "oom/fit", "oom/oom"]
    lines = [head]
    for r in rows:
        measured = "-" if r["measured_largest"] is None else (
            "none" if r["measured_largest"] == 0 else f"{'>=' if r['capped'] else ''}{r['measured_largest']}")
        planner = "-" if r["predicted_largest"] is None else str(r["predicted_largest"] or "none")
        lines.append([r["model"], r["method"], f"{r['searched']} @ {r['fixed']}", measured, planner,
                      str(len(r["probes"])), *(str(r["agreement"][k]) for k in search.AGREEMENT)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    table = "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines)
    return (f"largest fit under --max-memory {budget_text}: measured (real runs) beside the planner's prediction;\n"
            f"agreement over the probed points as planner/measured (fit/oom = predicted to fit, measured oom)\n{table}")
