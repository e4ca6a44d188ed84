"""What a method buys, from bench.results.compare's paired statistics: the report's link to them.

`paired()` asks bench.results.compare for the mean and interval over seeds of each headline metric
(seed_summary), each method's target-task gain and MMLU change against base (learn_forget), and
the pairwise verdicts (compare_runs). This module computes no statistics itself; it draws the
"learns versus forgets" chart and the verdicts table from those rows, and when bench.results.compare is
missing the report goes on without them and says so.
"""

from dataclasses import dataclass, field

from pyecharts import options as opts
from pyecharts.charts import Scatter

from bench.results.report import style

METRIC_PATHS = ("mmlu.acc", "heldout.loss")  # plus tasks.<target>.acc, added per source


@dataclass
class Paired:
    summaries: dict = field(default_factory=dict)  # (source, model, group, method, path) -> seed_summary row
    learn_forget: list = field(default_factory=list)  # learn_forget rows, each with "source"
    rows: list = field(default_factory=list)  # (source, bench.results.compare Row) pairs
    notes: list = field(default_factory=list)


def paired(sources: list, *, paths=METRIC_PATHS) -> Paired:
    """sources: [(label, records, root)]. Each source is compared within itself."""
    out = Paired()
    try:
        import bench.results.compare as api
    except ImportError as exc:
        out.notes.append(f"paired statistics skipped: bench.results.compare cannot be imported ({exc})")
        return out
    for label, records, root in sources:
        try:
            _add(out, api, label=label, records=records, root=root, paths=paths)
        except (ValueError, OSError, KeyError) as exc:  # the statistics are optional: the page still shows the runs
            out.notes.append(f"[{label}] paired statistics skipped: {exc}")
    return out


def _add(out: Paired, api, *, label, records, root, paths) -> None:
    """One source's seed summaries, learns-versus-forgets rows and pairwise rows, into `out`."""
    targets = {f"tasks.{name}.acc" for r in records for name, block in (r.get("tasks") or {}).items()
               if isinstance(block, dict) and block.get("role") == "target"}
    for path in (*paths, *sorted(targets)):
        for row in api.seed_summary(records, metric=path):
            out.summaries[(label, row["model"], row["group"], row["method"], path)] = row
    comparison = api.compare_runs(api.as_runs(records, root))  # one family: the chart's rows are the table's
    out.learn_forget += [dict(row, source=label) for row in api.learn_forget(records, root, comparison=comparison)]
    out.rows += [(label, row) for row in comparison.rows]
    if comparison.rows:
        from bench.results.compare.table import family_line

        out.notes.append(f"[{label}] verdicts table: {family_line(comparison)}; a verdict needs the interval to "
                         "exclude 0 and the adjusted p below 0.05 (docs/compare.md)")
    out.notes += [f"[{label}] left out of the family: {why}" for why in comparison.left_out]
    out.notes += [f"[{label}] {note}" for note in comparison.notes]


def _get(row, name):
    return row.get(name) if isinstance(row, dict) else getattr(row, name, None)


def _forgetting(r: dict):
    """(figure, label): the forgetting suite's mean change when measured, else MMLU's."""
    if r.get("suite_change"):
        return r["suite_change"], "forgetting-suite change"
    return r.get("mmlu_change"), "MMLU change"


def _said(figure: dict) -> str:
    """A chart figure's verdict, what it is about, and beside "indistinguishable" its mde (points)."""
    text = figure["verdict"]
    if text.startswith("indistinguishable") and figure.get("mde") is not None:
        text += f", mde {100 * figure['mde']:.1f} pt"
    scope = {"method": "method", "checkpoints": "these checkpoints"}.get(figure.get("scope"))
    return f"{text} [{scope}]" if scope else text


def _learn_forget_point(r: dict, many: bool, models: bool = False) -> dict:
    gain, (change, label) = r["target_gain"], _forgetting(r)
    x, y = 100 * gain["diff"], 100 * change["diff"]
    name = f"{r['model']} · {r['method']}" + (f" [{r['source']}]" if many else "")
    tip = (f"<b>{style.safe(name)}</b><br/>{style.safe(r.get('target_task'))} gain over base: {x:+.1f} pt "
           f"(95% {100 * gain['lo']:+.1f} to {100 * gain['hi']:+.1f}), {_said(gain)}<br/>{label} vs base: "
           f"{y:+.1f} pt (95% {100 * change['lo']:+.1f} to {100 * change['hi']:+.1f}), {_said(change)}<br/>"
           f"seeds: {', '.join(map(str, r.get('seeds') or []))}")
    return {"name": f"{r['model']} · {r['method']}" if models else r["method"], "value": [round(x, 4), round(y, 4)],
            "tooltip": {"formatter": tip}}


def learn_forget_chart(rows: list):
    """x = target-task gain over base, y = the forgetting suite's mean change vs base (MMLU's where no
    suite was scored), in points, one point per method with both intervals; None when no row has both."""
    usable = [r for r in rows if r.get("target_gain") and _forgetting(r)[0]]
    if not usable:
        return None
    many = len({r["source"] for r in usable}) > 1
    labels = {_forgetting(r)[1] for r in usable}
    axis = labels.pop() if len(labels) == 1 else "forgetting-suite change, or MMLU's where no suite ran"
    scatter = Scatter(init_opts=opts.InitOpts(width=style.WIDTH, height=style.HEIGHT,
                                              animation_opts=opts.AnimationOpts(animation=False))).add_xaxis([])
    model_order = list(dict.fromkeys(r["model"] for r in usable))
    models = len(model_order) > 1  # then colour is the model, the marker the method (as the headline)
    series = [(model, method) for model in model_order
              for method in style.method_order(r["method"] for r in usable if r["model"] == model)] if models \
        else [(None, method) for method in style.method_order(r["method"] for r in usable)]
    for model, method in series:
        mine = [r for r in usable if r["method"] == method and (model is None or r["model"] == model)]
        data = [dict(_learn_forget_point(r, many, models),
                     **({"symbol": style.method_symbol(method)} if models else {}))
                for r in mine]
        name = f"{model} · {method}" if models else method
        colour = style.model_color(model_order.index(model)) if models else style.color(method)
        bars = []
        for r in mine:  # a horizontal and a vertical interval per point; '-' breaks the line
            gain, (change, _) = r["target_gain"], _forgetting(r)
            x, y = 100 * gain["diff"], 100 * change["diff"]
            bars += [[100 * gain["lo"], y], [100 * gain["hi"], y], [x, "-"],
                     [x, 100 * change["lo"]], [x, 100 * change["hi"]], [x, "-"]]
        scatter.add_yaxis(name, data, color=colour, symbol_size=14,
                          label_opts=opts.LabelOpts(position="right", formatter="{b}"),
                          itemstyle_opts=opts.ItemStyleOpts(color=colour) if models else None)
        scatter.options["series"].append({"type": "line", "name": name, "data": bars, "showSymbol": False,
                                          "silent": True, "connectNulls": False, "tooltip": {"show": False},
                                          "itemStyle": {"color": colour}, "lineStyle": {"width": 1.5}})
    scatter.options["series"][0]["markLine"] = {"silent": True, "symbol": "none", "label": {"show": False},
                                                "lineStyle": {"color": "#999", "type": "dashed"},
                                                "data": [{"xAxis": 0}, {"yAxis": 0}]}
    return scatter.set_global_opts(
        title_opts=opts.TitleOpts(title="Learns vs forgets (against base)",
                                  subtitle=f"right: learns more on the target task; down: forgets more ({axis}); "
                                           "bars: 95% paired intervals"),
        xaxis_opts=opts.AxisOpts(type_="value", name="target-task gain over base (points)", name_location="middle",
                                 name_gap=28, is_scale=True),
        yaxis_opts=opts.AxisOpts(type_="value", name=f"{axis} vs base (points)", is_scale=True),
        tooltip_opts=opts.TooltipOpts(trigger="item"), legend_opts=opts.LegendOpts(pos_top="bottom"))


def _verdict_text(row) -> str:
    """The verdict with what it is about; beside "indistinguishable", the smallest detectable difference."""
    from bench.results.compare.table import verdict_text

    if isinstance(row, dict) or _get(row, "scope") is None:  # fixture rows without the fields: the verdict alone
        return str(_get(row, "verdict"))
    return verdict_text(row)


def verdict_table(rows: list):
    """The pairwise verdicts as a sortable table: [(source, Row)] -> {columns, rows}; None if empty."""
    from bench.results.report.page import cell

    if not rows:
        return None
    many = len({source for source, _ in rows}) > 1
    out = []
    for source, row in rows:
        points = _get(row, "kind") != "loss"  # accuracies on 0-1 shown in points, losses as they are
        k, fmt = (100, "{:+.1f}") if points else (1, "{:+.3f}")
        value = "{:.1f}" if points else "{:.3f}"
        needed = _get(row, "n_needed_1pt")
        cells = ([cell(source)] if many else []) + [
            cell(_get(row, "model")), cell(_get(row, "a")), cell(_get(row, "b")), cell(_get(row, "metric")),
            cell(_get(row, "n"), fmt="{}"), cell(_get(row, "value_a") * k, fmt=value),
            cell(_get(row, "value_b") * k, fmt=value), cell(_get(row, "diff") * k, fmt=fmt),
            cell(_get(row, "lo") * k, fmt="{}",
                 text=f"{fmt.format(_get(row, 'lo') * k)} to {fmt.format(_get(row, 'hi') * k)}"),
            cell(_get(row, "p"), fmt="{:.3g}"), cell(_get(row, "p_adjusted"), fmt="{:.3g}"),
            cell(_get(row, "verdict"), cls=f"v-{str(_get(row, 'verdict')).split()[0]}",
                 text=_verdict_text(row) + (" (exploratory)" if _get(row, "exploratory") else "")),
            cell(_get(row, "mde") * k if _get(row, "mde") is not None else None, fmt=value),
            cell(needed, fmt="{:,.0f}"),
        ]
        out.append({"failed": False, "cells": cells})
    columns = (["source"] if many else []) + ["model", "A", "B", "metric", "n", "A", "B", "A − B", "95% interval",
                                              "p", "Holm p", "verdict", "mde (80%)", "questions for 1 pt"]
    return {"columns": columns, "rows": out}
