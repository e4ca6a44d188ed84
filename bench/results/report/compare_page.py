"""The compare page: `run_bench.py report BASELINE CANDIDATE --compare` -> compare.html.

Runs are matched exactly as the gate matches them (bench.results.gate.verdicts.pair: model, method,
spec_hash), and each matched run gets one row: baseline -> candidate with the change for peak
memory per phase, throughput, MMLU and task accuracy and held-out loss, and the gate's verdict
for the run, coloured. The verdicts come from bench.results.gate.verdicts; this module only shows them.
Repeats on one side are summarised as the gate does (median; mean for accuracy).
"""

import json
import statistics
from pathlib import Path

from pyecharts import options as opts
from pyecharts.charts import Bar

from bench.results import store
from bench.results.gate import DEFAULT_TOLERANCES
from bench.results.gate.verdicts import check_records, describe_env, summary
from bench.results.gate.verdicts import (IMPROVED, INCONCLUSIVE, MISSING, PASS, REGRESSION, VERDICTS, compare,
                                         exit_code, get, pair, run_name)
from bench.results.report import page, style
from bench.util.atomic import write_atomic
from bench.util.errors import BenchError
from bench.util.units import gib

PAGE = "compare.html"
# (dotted path, column, kind): kind "bytes" and "rate" show a relative change, "acc" points, "loss" a difference
FIGURES = (("memory.train.peak_bytes", "train peak GiB", "bytes"), ("memory.load.peak_bytes", "load peak GiB", "bytes"),
           ("memory.eval.peak_bytes", "eval peak GiB", "bytes"), ("throughput.tokens_per_s", "tokens/s", "rate"),
           ("mmlu.acc", "MMLU %", "acc"), ("heldout.loss", "held-out loss", "loss"))
SEVERITY = {v: i for i, v in enumerate((MISSING, REGRESSION, INCONCLUSIVE, IMPROVED, PASS))}  # worst first


def _summary(records: list, path: str, kind: str):
    values = [v for v in (get(r, path) for r in records if r["status"] == "ok") if isinstance(v, (int, float))]
    if not values:
        return None
    return statistics.mean(values) if kind == "acc" else statistics.median(values)


def _shown(value, kind: str) -> str:
    if value is None:
        return "-"
    return {"bytes": f"{gib(value):.3f}", "rate": f"{value:.1f}", "acc": f"{100 * value:.1f}",
            "loss": f"{value:.3f}"}[kind]


def _change(base, cand, kind: str):
    """(number the sort uses, text): relative % for bytes and rates, points for accuracy, a difference for loss."""
    if base is None or cand is None:
        return None, ""
    if kind in ("bytes", "rate"):
        change = 100 * (cand / base - 1) if base else float("inf")
        return change, f"{change:+.1f}%"
    if kind == "acc":
        return 100 * (cand - base), f"{100 * (cand - base):+.1f} pt"
    return cand - base, f"{cand - base:+.3f}"


def figures(baseline: list, candidate: list) -> tuple:
    """FIGURES plus one accuracy column per task that either side measured (`tasks.<name>.acc`)."""
    tasks = sorted({name for r in baseline + candidate for name in (r.get("tasks") or {})
                    if isinstance((r.get("tasks") or {}).get(name), dict)})
    return (FIGURES[:5] + tuple((f"tasks.{t}.acc", f"{t.removeprefix('ftbench_')} %", "acc") for t in tasks)
            + FIGURES[5:])


def _verdict_cell(judged: dict) -> dict:
    """The run's verdict: the worst of the gate's checks, naming the checks that gave it."""
    verdict = min((r.verdict for r in judged.values()), key=SEVERITY.get, default=PASS)
    flagged = [m for m, r in judged.items() if r.verdict == verdict and verdict != PASS]
    why = "; ".join(f"{m}: {r.verdict}" + (f" ({r.note})" if r.note else "")
                    for m, r in judged.items() if r.verdict != PASS)
    return page.cell(verdict, cls=f"wrap v-{verdict}", title=why or None,
                     text=f"{verdict}: {', '.join(flagged)}" if flagged else verdict)


def _figure_cell(base: list, cand: list, *, path: str, kind: str, gated) -> dict:
    """'baseline -> candidate (change)', sorted by the change, coloured by the gate's verdict when it checks it."""
    b, c = _summary(base, path, kind), _summary(cand, path, kind)
    number, change = _change(b, c, kind)
    text = ("-" if b is None and c is None
            else f"{_shown(b, kind)} → {_shown(c, kind)}" + (f" ({change})" if change else ""))
    shown = page.cell(number, fmt="{}", cls=f"delta v-{gated.verdict}" if gated else "delta",
                      title=gated.note if gated and gated.note else None)
    return dict(shown, text=text)  # "- -> 1.000" has no change to sort by, but is shown


def rows(baseline: list, candidate: list, *, tolerances: dict) -> tuple:
    """(table for the page, gate rows). BenchError when the two sides share no run."""
    matched = pair(baseline, candidate)
    if not any(b and c for _, b, c in matched):
        raise BenchError(f"baseline and candidate share no runs (matched by model, method and spec hash): "
                         f"baseline has {len({k for k, b, _ in matched if b})}, candidate "
                         f"{len({k for k, _, c in matched if c})}; compare results of the same profile and settings")
    gate_rows = compare(baseline, candidate, tolerances=tolerances)
    by_run = {}
    for row in gate_rows:
        by_run.setdefault(row.run, {})[row.metric] = row
    shown = figures(baseline, candidate)
    columns = ["model", "method", "spec", "records", "gate verdict"] + [label for _, label, _ in shown]
    table = []
    for key, base, cand in matched:
        judged = by_run.get(run_name(key), {})
        cells = [page.cell(key[0]), page.cell(key[1]), page.cell(key[2][:8], title=key[2]),
                 page.cell(f"{len(base)} / {len(cand)}"), _verdict_cell(judged)]
        cells += [_figure_cell(base, cand, path=path, kind=kind, gated=judged.get(path)) for path, _, kind in shown]
        table.append({"failed": False, "cells": cells})
    return {"columns": columns, "rows": table}, gate_rows


def chart(baseline: list, candidate: list):
    """Change vs baseline (%) of train peak memory and throughput, one pair of bars per matched run."""
    names, memory, speed = [], [], []
    for key, base, cand in pair(baseline, candidate):
        if base and cand:
            names.append(f"{key[0]} · {key[1]} {key[2][:8]}")
            for path, out in (("memory.train.peak_bytes", memory), ("throughput.tokens_per_s", speed)):
                change, _ = _change(_summary(base, path, "bytes"), _summary(cand, path, "bytes"), "bytes")
                out.append(None if change is None else round(change, 2))
    bar = Bar(init_opts=opts.InitOpts(width=style.WIDTH, height=style.HEIGHT,
                                      animation_opts=opts.AnimationOpts(animation=False))).add_xaxis(names)
    bar.add_yaxis("train peak memory", memory, color="#3182bd", label_opts=opts.LabelOpts(is_show=False))
    bar.add_yaxis("throughput", speed, color="#fd8d3c", label_opts=opts.LabelOpts(is_show=False))
    bar.options.update(grid={"bottom": 120, "containLabel": False})
    return bar.set_global_opts(
        title_opts=opts.TitleOpts(title="Change vs baseline",
                                  subtitle="candidate / baseline - 1, in %; memory: lower is "
                                           "better, throughput: higher is better"),
        xaxis_opts=opts.AxisOpts(axislabel_opts=opts.LabelOpts(rotate=30, interval=0)),
        yaxis_opts=opts.AxisOpts(name="%"), tooltip_opts=opts.TooltipOpts(trigger="axis"),
        legend_opts=opts.LegendOpts(pos_top="bottom"))


def build_compare(*, baseline, candidate, out_dir, labels=None, tolerances=None, skip_bad_lines: bool = False) -> Path:
    """Write out_dir/compare.html comparing two result sources; return its path."""
    names = [str(x) for x in (labels or (baseline, candidate))]
    sides = [store.read(source, skip_bad_lines=skip_bad_lines)[0] for source in (baseline, candidate)]
    for side, records in zip(("baseline", "candidate"), sides):
        check_records(records, side=side)
    table, gate_rows = rows(*sides, tolerances=tolerances or DEFAULT_TOLERANCES)
    verdict = summary(gate_rows, exit_code=exit_code(gate_rows))
    charts = [{"id": "chart-compare", "options": json.loads(chart(*sides).dump_options()), "notes": []}]
    notes = [f"Verdict kinds: {', '.join(VERDICTS)}. Tolerances: " +
             ", ".join(f"{k}={v:g}" for k, v in (tolerances or DEFAULT_TOLERANCES).items()) + " (docs/gate.md)."]
    html = page.render_compare(names=tuple(names), envs=tuple(describe_env(s) for s in sides), table=table,
                               summary=verdict, charts=charts, notes=notes)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_atomic(out_dir / PAGE, html)
