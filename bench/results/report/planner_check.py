"""The planner held against the runs' own measurements, out of sample: nothing is fitted here.

    python scripts/planner_check.py DIR [DIR ...]    # the tables, in Markdown, for the README

Per trained run that finished with an estimate: the planner's train peak (`estimate.total_bytes`,
which the worker computed at run time with the committed constants) against the measured one
(`memory.train.peak_bytes`), error = 100 x (predicted - measured) / measured; and per component
(bench.results.report.scale.COMPONENTS) the measured `memory.breakdown` against the planner's `terms`, the
error in percent of the run's measured peak, so that components add up to the run's error. A run
of a model in the planner's calibration set (bench.plan.calibration.SETS["calibration"], which
fixed the CPU constants) is marked, and the out-of-sample summary leaves it out. A run that ran
out of memory has no measured peak: the planner's figure for it (computed now, same settings) is
shown against its budget.
"""

import statistics

from bench.results.report import scale
from bench.util.units import mib


def calibration_models() -> set:
    """Models whose runs set the planner's CPU constants."""
    from bench.plan.calibration import SETS

    return {model for models, *_ in SETS["calibration"] for model in models}


def _error(predicted, measured) -> float:
    return 100.0 * (predicted - measured) / measured


def run_rows(records: list, *, now: bool = False) -> list:
    """One dict per trained ok run with an estimate: model, method, params, measured, predicted,
    error_pct, in_sample, components {component: (measured, predicted, error % of the peak)} or None.
    `now`: the estimate this release's planner makes for the run's settings (scale.plan), instead
    of the one the worker recorded, so a changed term can be held against old measurements."""
    fitted = calibration_models()
    rows = []
    for r in records:
        estimate, measured = r.get("estimate") or {}, scale.train_peak(r)
        if r.get("status") != "ok" or r.get("method") == "base" or not estimate.get("total_bytes") or not measured:
            continue
        if now:
            config = scale.model_config(r)
            if not config:
                continue
            estimate = scale.plan(r, config=config[1], method=r["method"])
        parts = scale.measured_components(r)
        components = None
        if parts is not None:
            predicted = scale.predicted_components(estimate)
            components = {c: (parts[c], predicted[c], 100.0 * (predicted[c] - parts[c]) / measured)
                          for c in scale.COMPONENTS}
        rows.append({"model": r["model"], "method": r["method"], "params": scale.base_params(r),
                     "measured": measured, "predicted": estimate["total_bytes"],
                     "error_pct": _error(estimate["total_bytes"], measured),
                     "in_sample": r["model"] in fitted, "components": components, "run_id": r.get("run_id")})
    return sorted(rows, key=lambda row: (row["params"] or 0, row["method"]))


def oom_rows(records: list) -> list:
    """One dict per oom run under a budget: model, method, budget, predicted (now), fits (planner's word).
    A run repeated with `--resume` counts once, as its last outcome: an oom that a later record of
    the same spec (spec_hash) finished ok is not an oom, and two ooms of one spec are one row."""
    rows, last = [], {}
    for r in records:
        last[r.get("spec_hash") or id(r)] = r  # a spec is one (model, method, seed, settings)
    for r in last.values():
        budget = scale.budget_of(r)
        if r.get("status") != "oom" or not budget or r.get("method") == "base":
            continue
        config = scale.model_config(r)
        predicted = None
        if config and (r.get("config") or {}).get("seq_len"):
            try:
                predicted = scale.plan(r, config=config[1], method=r["method"])["total_bytes"]
            except Exception:  # an old record may lack a setting the planner needs: shown as '-'
                predicted = None
        rows.append({"model": r["model"], "method": r["method"], "budget": budget, "predicted": predicted,
                     "agrees": None if predicted is None else predicted > budget})
    return rows


def _stats(values) -> dict:
    values = [abs(v) for v in values]
    return {"n": len(values), "median": statistics.median(values) if values else None,
            "max": max(values) if values else None}


def summary(rows: list) -> dict:
    """Median and max |error| of the train peak (all runs, out of sample only) and per component."""
    outside = [r for r in rows if not r["in_sample"]]
    with_parts = [r for r in outside if r["components"]]
    methods = dict.fromkeys(r["method"] for r in outside)
    return {"all": _stats(r["error_pct"] for r in rows), "out_of_sample": _stats(r["error_pct"] for r in outside),
            "methods": {m: _stats(r["error_pct"] for r in outside if r["method"] == m) for m in methods},
            "components": {c: _stats(r["components"][c][2] for r in with_parts) for c in scale.COMPONENTS}}


def _fmt(value, fmt="{:.1f}", unit=""):
    """A figure for the tables; '-' where there is none, and never '-0.0'."""
    if value is None:
        return "-"
    text = fmt.format(value)
    return (fmt.format(0.0) if not any(c in "123456789" for c in text) else text) + unit


def sentence(rows: list) -> str:
    """The summary in words, for the report and the README."""
    s = summary(rows)
    out, every = s["out_of_sample"], s["all"]
    text = (f"Planner against measured train peak, out of sample ({out['n']} runs): median |error| "
            f"{_fmt(out['median'], unit='%')}, max {_fmt(out['max'], unit='%')}")
    if every["n"] != out["n"]:
        text += (f"; with the {every['n'] - out['n']} run(s) of the calibration model: median "
                 f"{_fmt(every['median'], unit='%')}, max {_fmt(every['max'], unit='%')}")
    return text + "."


def markdown(records: list, *, now: bool = False) -> str:
    """The per-run table, the per-component summary and the oom rows, as Markdown (`now`: run_rows)."""
    rows, ooms = run_rows(records, now=now), oom_rows(records)
    lines = [sentence(rows), "", "| model | method | params | measured | predicted | error |" + "".join(
        f" {c} |" for c in scale.COMPONENTS), "|---|---|---|---|---|---|" + "---|" * len(scale.COMPONENTS)]
    for r in rows:
        parts = "".join(f" {_fmt(r['components'][c][2], '{:+.1f}', '%')} |" if r["components"] else " - |"
                        for c in scale.COMPONENTS)
        mark = " (calibration model)" if r["in_sample"] else ""
        lines.append(f"| {r['model']}{mark} | {r['method']} | {_fmt(r['params'] and r['params'] / 1e9, '{:.2f}')}B "
                     f"| {mib(r['measured']):,.0f} MiB | {mib(r['predicted']):,.0f} MiB "
                     f"| {r['error_pct']:+.1f}% |{parts}")
    by_method = summary(rows)["methods"]
    lines += ["", "Per method, out of sample:", "", "| method | runs | median abs error | max abs error |",
              "|---|---|---|---|"]
    lines += [f"| {m} | {v['n']} | {_fmt(v['median'], unit='%')} | {_fmt(v['max'], unit='%')} |"
              for m, v in by_method.items()]
    s = summary(rows)["components"]
    lines += ["", "Per component, out of sample (error in % of the run's measured train peak):", "",
              "| component | runs | median abs error | max abs error |", "|---|---|---|---|"]
    lines += [f"| {c} | {s[c]['n']} | {_fmt(s[c]['median'], unit='%')} | {_fmt(s[c]['max'], unit='%')} |"
              for c in scale.COMPONENTS]
    if ooms:
        lines += ["", "| oom run | budget | planner's peak | planner says |", "|---|---|---|---|"]
        lines += [f"| {o['model']} {o['method']} | {mib(o['budget']):,.0f} MiB "
                  f"| {_fmt(o['predicted'] and mib(o['predicted']), '{:,.0f}')} MiB "
                  f"| {'-' if o['agrees'] is None else 'does not fit' if o['agrees'] else 'fits (wrong)'} |"
                  for o in ooms]
    return "\n".join(lines)
