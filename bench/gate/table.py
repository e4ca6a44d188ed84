"""Render verdict rows and environments as text. Pure: returns strings, never prints."""

import math
import statistics
from collections import Counter

from bench.gate.compare import CALIBRATION, IMPROVED, INCONCLUSIVE, MISSING, REGRESSION, get
from bench.units import fmt_bytes

HEADER = ("run", "metric", "baseline", "candidate", "change", "verdict", "note")


def _value(metric, value):
    if value is None or isinstance(value, str):
        return value or "-"
    if metric.endswith("_bytes"):
        return fmt_bytes(value)
    if metric.endswith("tokens_per_s"):
        return f"{value:.1f} tok/s"
    if metric == "mmlu.acc":
        return f"{100 * value:.1f}%"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _change(metric, change):
    if change is None:
        return "-"
    if math.isinf(change):
        return "inf"
    if metric == "mmlu.acc":
        return f"{100 * change:+.1f} pt"
    if isinstance(change, int):
        return f"{change:+,}"
    return f"{100 * change:+.1f}%"


def render_rows(rows: list) -> str:
    """The verdict table: one line per metric and run, columns padded to fit."""
    cells = [HEADER] + [
        (r.run, r.metric, _value(r.metric, r.baseline), _value(r.metric, r.candidate),
         _change(r.metric, r.change), r.verdict, r.note)
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in cells) for i in range(len(HEADER) - 1)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)) + "  " + line[-1] for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def summary(rows: list, *, exit_code: int) -> str:
    """One final line: PASS or FAIL, then the count of each verdict that is not a plain pass."""
    counts = Counter(row.verdict for row in rows)
    runs = len({row.run for row in rows})
    parts = [f"{counts[v]} {v}" for v in (REGRESSION, MISSING, INCONCLUSIVE, IMPROVED) if counts[v]]
    detail = ", ".join(parts) if parts else "all within tolerance"
    return f"gate: {'FAIL' if exit_code else 'PASS'} ({len(rows)} checks on {runs} runs: {detail})"


def describe_env(records: list) -> str:
    """Where a side's records came from: git, torch, CPU/GPU, threads and calibration."""
    env = records[0].get("env")
    env = env if isinstance(env, dict) else {}
    shas = {(get(r, "env.git_sha") or "?")[:8] + ("+dirty" if get(r, "env.git_dirty") else "") for r in records}
    torch = (env.get("packages") or {}).get("torch", "?")
    device = env.get("device_name") or "?"
    cpu = env.get("cpu_model") or "?"
    figures = [get(r, CALIBRATION) for r in records]
    known = [f for f in figures if isinstance(f, (int, float))]
    cal = f"{statistics.median(known):.1f} GFLOP/s" if known else "none"
    if known and len(known) < len(figures):
        cal += f" ({len(figures) - len(known)} records without)"
    return (f"{len(records)} records, git {','.join(sorted(shas))}, torch {torch}, device {device}, "
            f"cpu {cpu} x{env.get('threads', '?')} threads, calibration {cal}")
