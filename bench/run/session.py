"""Run a matrix: one child per spec, records appended as they finish, progress with an ETA,
a summary table and the report at the end. A failed run is a result; the others go on."""

import time
from pathlib import Path

from bench.results import store
from bench.results.record import skeleton
from bench.run.matrix import run_id


def completed(out_dir: Path) -> set:
    """spec_hashes with an ok record in out_dir (what --resume skips)."""
    if not (out_dir / store.RESULTS).exists():
        return set()
    records, _ = store.read(out_dir, skip_bad_lines=True)
    return {r["spec_hash"] for r in records if r["status"] == "ok"}


def run_matrix(specs: list, *, out_dir: Path, resume: bool = False, report: bool = True, executor=None,
               trackers=(), estimates=None) -> int:
    """Run every spec not already ok (with resume) on `executor` (default: local), appending each
    record as it comes back, then handing it to each tracker (bench.results.trackers). This process is the
    only writer of results.jsonl, whichever executor. `estimates` ({spec_hash: seconds}, the
    planner's, bench.run.dry_run) give the ETA before the first run ends."""
    from bench.run.executors.local import LocalExecutor

    executor = executor or LocalExecutor()
    done = completed(out_dir) if resume else set()
    todo = [s for s in specs if s["spec_hash"] not in done]
    if resume:
        print(f"resume: {len(specs) - len(todo)} of {len(specs)} runs already ok in {out_dir}")
    records, durations, pending, in_flight = [], [], list(todo), {}
    estimates, finished = estimates or {}, []
    try:
        while pending or in_flight:
            while pending and len(in_flight) < executor.slots:
                spec = dict(pending.pop(0))
                spec["run_id"] = run_id(spec)
                print(f"[{len(todo) - len(pending)}/{len(todo)}] {spec['model']} x {spec['method']}"
                      f"{eta(finished=finished, remaining=[spec, *pending], estimates=estimates)}", flush=True)
                in_flight[executor.submit(spec, out_dir=out_dir)] = (spec, time.perf_counter())
            for handle, result in executor.wait(list(in_flight)):
                spec, started = in_flight.pop(handle)
                record = _tag(result, spec=spec, executor=executor.name)
                store.append(out_dir, record)
                records.append(record)
                _track(trackers, record)
                durations.append(time.perf_counter() - started)
                finished.append((spec, durations[-1]))
                print(f"    -> {record['method']} {record['status']}"
                      + (f": {record['error']}" if record["error"] else "")
                      + f" ({durations[-1]:.0f} s)", flush=True)
    except KeyboardInterrupt as exc:
        executor.cancel(list(in_flight))
        _record_interrupt([s for s, _ in in_flight.values()], pending, out_dir, reason=str(exc) or "SIGINT")
        print(f"interrupted: finished records are in {out_dir / store.RESULTS}; "
              f"rerun with --resume --out {out_dir} to complete the matrix", flush=True)
        return 130
    finally:
        executor.close()
    print(summary(records))
    if report:
        _write_report(out_dir)
    print(f"results: {out_dir / store.RESULTS}")
    for tracker in trackers:
        print(f"logged to {tracker.where()}")
    return 0 if all(r["status"] == "ok" for r in records) else 1


def _tag(result, *, spec: dict, executor: str) -> dict:
    """The record as stored: a lost run becomes a crashed record; every record names its executor."""
    from bench.run.executors import lost_record

    record = lost_record(spec, executor=executor, exc=result) if isinstance(result, BaseException) else result
    record["executor"] = executor
    return record


def _track(trackers, record: dict) -> None:
    """Log a stored record to each tracker; a tracker's failure is said, and the matrix goes on."""
    for tracker in trackers:
        try:
            tracker.log(record)
        except Exception as exc:  # noqa: BLE001  (the record is safe in results.jsonl already)
            print(f"    tracker: could not log {record['run_id']}: {exc.__class__.__name__}: {exc}", flush=True)


def eta(*, finished: list, remaining: list, estimates: dict) -> str:
    """The time left for `remaining` specs (this one included). With the planner's estimates, each
    remaining run's estimate scaled by how the finished runs' measured times compared with theirs
    (1 before any finishes); without, the mean of the finished runs' times. `finished` holds
    (spec, measured seconds)."""
    from bench.util.progress import clock_text

    priced = [(spec, s) for spec, s in finished if spec["spec_hash"] in estimates]
    planned = sum(estimates[spec["spec_hash"]] for spec, _ in priced)
    scale = sum(s for _, s in priced) / planned if planned else 1.0
    mean = sum(s for _, s in finished) / len(finished) if finished else None
    left, known = 0.0, True
    for spec in remaining:
        if spec["spec_hash"] in estimates:
            left += estimates[spec["spec_hash"]] * scale
        elif mean is not None:
            left += mean
        else:
            known = False
    if not known or (not finished and not estimates):
        return ""
    source = ("planner" if not finished else f"planner x {scale:.2f} from finished runs" if priced
              else "mean of finished runs")
    return f"  (ETA {clock_text(left)}, {source})"


def _record_interrupt(cut_short: list, not_started: list, out_dir: Path, *, reason: str) -> None:
    """The runs cut short and the ones never started are recorded, so nothing is silently lost."""
    for spec in cut_short:
        store.append(out_dir, skeleton(spec, status="error", error=f"interrupted ({reason})"))
    for other in not_started:
        store.append(out_dir, skeleton(dict(other, run_id=run_id(other)), status="skipped",
                                       error=f"not started: matrix interrupted ({reason})"))


DASH = "\u2013"  # shown where a run never reached a figure


def _shown(value, fmt: str) -> str:
    return DASH if value is None else fmt.format(value)


def summary(records: list) -> str:
    """The end-of-matrix table; `–` where a figure is missing (a failed run, a block not measured)."""
    import pandas as pd

    from bench.util.units import mib

    rows = []
    for r in records:
        train = ((r.get("memory") or {}).get("train") or {}).get("peak_bytes")
        throughput, mmlu, heldout = r.get("throughput") or {}, r.get("mmlu") or {}, r.get("heldout") or {}
        params = r.get("params") or {}
        row = {
            "model": r["model"], "method": r["method"], "status": r["status"],
            "trainable": _shown(params.get("trainable"), "{:,}"), "total": _shown(params.get("total"), "{:,}"),
            "train peak MiB": _shown(None if train is None else mib(train), "{:,.0f}"),
            "tokens/s": _shown(throughput.get("tokens_per_s"), "{:.1f}"),
            "MMLU %": _shown(None if mmlu.get("acc") is None else 100 * mmlu["acc"], "{:.1f}"),
        }
        if any(rec.get("heldout") for rec in records):
            row["held-out loss"] = _shown(heldout.get("loss"), "{:.3f}")
        row["wall s"] = _shown(r.get("wall_s"), "{:.1f}")
        rows.append(row)
    if not rows:
        return "no runs"
    return pd.DataFrame(rows).to_string(index=False)


def _write_report(out_dir: Path) -> None:
    try:
        from bench.results.report import build
    except ImportError as exc:
        print(f"report: skipped: the report cannot be imported ({exc}); the results are complete. "
              f"Run `bash scripts/setup.sh`, then `run_bench.py report {out_dir}`", flush=True)
        return
    path = build(sources=[out_dir], out_dir=out_dir)
    print(f"report: {path}")
