"""The report's scale section: the memory-against-size chart with its notes, the full : lora : qlora
table, and the planner held against the runs (bench.results.report.planner_check). Shown when the results
hold two model sizes or more at one run setting (bench.results.report.scale.ladder); otherwise nothing."""

from bench.results.report import planner_check, scale, scale_chart
from bench.results.report.style import num
from bench.util.units import gib

CHART_ID = "chart-scale"
COMPONENT_NOTE = ("Components, measured (memory.breakdown) and predicted (estimate.terms): weights = parameters of "
                  "any dtype, buffers, quantisation constants, adapters; gradients; optimizer state; activations = "
                  "saved activations, the backward's activation gradients, inputs (planner: activations, logits and "
                  "loss, mask, autocast copies); the rest = the interpreter and libraries, temporaries, allocator "
                  "retention and what the profiler could not attribute (docs/report.md).")


def chart_spec(records: list):
    """{"id", "options", "notes", "tall"} for the scale chart, or None with fewer than two sizes."""
    ladder = scale.ladder(records)
    if ladder is None:
        return None
    lines, plan_notes = scale.planner_lines(ladder)
    machine = ("the machine's memory is env.ram_bytes (env.gpu_memory_bytes on CUDA) of the records"
               if ladder.machine_bytes else
               "these records do not state the machine's memory (env.ram_bytes): no line for it")
    notes = [scale.lora_advantage(ladder), COMPONENT_NOTE,
             f"Horizontal lines: {machine}; the dashed red line is the runs' --max-memory budget. A triangle (top) "
             "or an empty dashed bar (bottom) is a run that ran out of memory under that budget: it needed more.",
             *ladder.notes, *plan_notes]
    return {"id": CHART_ID, "options": scale_chart.chart(ladder, lines), "notes": notes, "tall": True}


def _ratio_table(ladder) -> dict:
    from bench.results.report.page import cell

    rows = []
    for r in scale.ratios(ladder):
        rows.append({"failed": False, "cells": [
            cell(r["model"]), cell(r["params"], fmt="{}", text=f"{r['params'] / 1e9:.2f}B"),
            *[cell(r[m], cls="status-bad" if r[m].startswith("oom") else None) for m in ("full", "lora", "qlora")],
            cell(r["ratio"])]})
    return {"columns": ["model", "params", "full", "lora", "qlora", "full : lora : qlora"], "rows": rows}


def _planner_table(rows: list) -> dict:
    from bench.results.report.page import cell

    out = []
    for r in rows:
        parts = [cell(None if not r["components"] else round(r["components"][c][2], 1) + 0.0, fmt="{:+.1f}")
                 for c in scale.COMPONENTS]  # + 0.0: a rounding residue shows as +0.0, never -0.0
        out.append({"failed": False, "cells": [
            cell(r["model"] + (" (calibration model)" if r["in_sample"] else ""), cls="wrap"), cell(r["method"]),
            cell(r["params"], fmt="{}", text=num(r["params"] and r["params"] / 1e9, "{:.2f}B")),
            cell(r["measured"], fmt="{}", text=f"{gib(r['measured']):.2f}"),
            cell(r["predicted"], fmt="{}", text=f"{gib(r['predicted']):.2f}"),
            cell(r["error_pct"], fmt="{:+.1f}"), *parts]})
    return {"columns": ["model", "method", "params", "measured GiB", "predicted GiB", "error %",
                        *[f"{c} error %" for c in scale.COMPONENTS]], "rows": out}


def table_specs(records: list) -> list:
    """The ratio table and the planner's errors, when there is a ladder."""
    ladder = scale.ladder(records)
    if ladder is None:
        return []
    shown = [r for r in records if r.get("run_id") in {p["run_id"] for p in ladder.points}]
    rows = planner_check.run_rows(shown)
    summary = planner_check.summary(rows)
    parts = "; ".join(f"{c} median {num(s['median'], '{:.1f}')}%, max {num(s['max'], '{:.1f}')}%"
                      for c, s in summary["components"].items())
    methods = "; ".join(f"{m} median {num(s['median'], '{:.1f}')}%, max {num(s['max'], '{:.1f}')}% ({s['n']} runs)"
                        for m, s in summary["methods"].items())
    ooms = planner_check.oom_rows(shown)
    verdict = {None: "cannot be computed.", True: "does not fit either.",
               False: "would fit: the planner is wrong here."}
    oom_note = [f"{o['model']} {o['method']} ran out of memory under {gib(o['budget']):.2f} GiB; the planner's "
                f"figure for it, {num(o['predicted'] and gib(o['predicted']), '{:.2f}')} GiB, {verdict[o['agrees']]}"
                for o in ooms]
    return [
        {"id": "scale-ratios", "title": "Full : LoRA : QLoRA at each size", "tall": False,
         "table": _ratio_table(ladder),
         "notes": ["Measured train-phase peaks (GiB) of the ladder's runs, and their ratio with QLoRA = 1 (when all "
                   "three finished).", scale.lora_advantage(ladder)]},
        {"id": "scale-planner", "title": "The planner against these runs (out of sample)", "tall": True,
         "table": _planner_table(rows),
         "notes": [planner_check.sentence(rows) + " Nothing is fitted on these runs: each estimate was made by the "
                   "worker with the committed constants; error = 100 x (predicted - measured) / measured. "
                   "`python scripts/planner_check.py DIR` prints the same as Markdown.",
                   f"Per method (out of sample, |error|): {methods}.",
                   f"Per component (out of sample; % of the run's measured peak, |error|): {parts}.", *oom_note]},
    ]
