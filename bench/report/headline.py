"""The headline charts: one benefit metric against train-phase peak memory, one chart per metric
measured (MMLU accuracy, the target task's accuracy, held-out loss), one series per method.

x = memory.train.peak_bytes / 1e9 (GB); y = the metric (accuracy x 100, or the loss); bubble
area linear in log10(params.trainable) so that 0.1% and 100% trainable are both readable.
`base` trains nothing: it is the reference, drawn as a small diamond with a dashed horizontal
line at its value, and it is not a candidate on the Pareto front (the dashed step line over the
trained methods: lower memory and a better metric). Runs of one method with several seeds are
drawn as one point, their mean, with the interval from bench.compare's seed summary; a single
run's bars are +-1 stderr (accuracy) or absent (loss).
"""

import math

import pandas as pd
from pyecharts import options as opts
from pyecharts.charts import Scatter

from bench.report import load, style
from bench.report.style import count, num, safe
from bench.units import gb

D_MIN, D_MAX = 12.0, 56.0  # bubble diameters (px) for the fewest and most trainable params
BASE_SIZE = 9.0  # diameter for runs with 0 trainable params (base)
BASE_NOTE = "trains 0 parameters: drawn at the minimal bubble size"


def metrics(runs: pd.DataFrame) -> list:
    """[{id, column, name, title, label, scale, higher, err, path}] for each benefit metric some ok run measured."""
    found = [{"id": "chart-headline", "column": "acc", "name": "MMLU", "label": "MMLU accuracy (%)",
              "title": "MMLU accuracy vs train-phase peak memory",
              "scale": 100, "higher": True, "err": "stderr", "path": "mmlu.acc"}]
    for task in load.target_tasks(runs)[:1]:
        short = task.removeprefix("ftbench_")
        found.append({"id": "chart-headline-target", "column": f"tasks.{task}.acc", "name": short,
                      "title": f"Target task ({short}) accuracy vs train-phase peak memory",
                      "label": f"{short} accuracy (%)", "scale": 100, "higher": True, "err": f"tasks.{task}.stderr",
                      "path": f"tasks.{task}.acc"})
    found.append({"id": "chart-headline-heldout", "column": "heldout_loss", "name": "held-out loss",
                  "title": "Held-out loss vs train-phase peak memory",
                  "label": "held-out loss (lower is better)", "scale": 1, "higher": False, "err": None,
                  "path": "heldout.loss"})
    ok = runs[runs["status"] == "ok"]
    return [m for m in found if m["column"] in ok and ok[m["column"]].notna().any()]


def bubble_size(trainable, lo, hi) -> float:
    """Diameter whose area is linear in log10(trainable) between lo and hi trainable params."""
    if style.missing(trainable) or trainable <= 0:
        return BASE_SIZE
    if hi <= lo:
        return round(math.sqrt((D_MIN**2 + D_MAX**2) / 2), 2)
    share = (math.log10(trainable) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    return round(math.sqrt(D_MIN**2 + share * (D_MAX**2 - D_MIN**2)), 2)


def pareto(points: pd.DataFrame, *, higher: bool = True) -> pd.Series:
    """True where no other point has lower-or-equal memory and a better-or-equal y (one strictly)."""
    flags = pd.Series(False, index=points.index)
    best = -math.inf
    for index, row in points.sort_values(["x", "y"], ascending=[True, not higher]).iterrows():
        value = row["y"] if higher else -row["y"]
        if value > best:
            flags[index], best = True, value
    return flags


def _seed_groups(ok: pd.DataFrame, metric: dict, summaries: dict) -> pd.DataFrame:
    """One row per plotted point: a summarised group (several seeds) or a single run."""
    rows = []
    for _, group in ok.groupby(["source", "model", "group", "method"], sort=False, dropna=False):
        first = group.iloc[0]
        summary = (summaries or {}).get((first.source, first.model, first.group, first.method, metric["path"]))
        if summary and summary.get("n", 1) > 1 and summary.get("lo") is not None:
            row = first.to_dict()
            row.update(x=gb(group["train_peak_bytes"].mean()), y=summary["mean"] * metric["scale"],
                       lo=summary["lo"] * metric["scale"], hi=summary["hi"] * metric["scale"],
                       seeds=len(summary["seeds"]), run_ids=list(group["run_id"]))
            rows.append(row)
            continue
        for _, run in group.iterrows():  # no summary: every run is its own point
            row = run.to_dict()
            err = run.get(metric["err"]) if metric["err"] else None
            err = 0.0 if style.missing(err) else err * metric["scale"]
            y = run[metric["column"]] * metric["scale"]
            row.update(x=gb(run["train_peak_bytes"]), y=y, lo=y - err, hi=y + err, seeds=1, run_ids=[run["run_id"]])
            rows.append(row)
    return pd.DataFrame(rows)


def points(runs: pd.DataFrame, metric: dict, *, summaries: dict = None) -> pd.DataFrame:
    """The plotted points of one metric: x, y, lo, hi, size, pareto (never base), seeds, run_ids."""
    ok = runs[(runs["status"] == "ok") & runs["train_peak_bytes"].notna() & runs[metric["column"]].notna()]
    pts = _seed_groups(ok, metric, summaries) if len(ok) else pd.DataFrame(columns=list(runs.columns) + ["x", "y"])
    if not len(pts):
        return pts.assign(size=[], pareto=[])
    positive = pts["trainable"][pts["trainable"] > 0]
    lo, hi = (positive.min(), positive.max()) if len(positive) else (1, 1)
    pts["size"] = [bubble_size(t, lo, hi) for t in pts["trainable"]]
    trained = pts[pts["method"] != "base"]
    pts["pareto"] = pareto(trained, higher=metric["higher"]).reindex(pts.index, fill_value=False) if len(trained) else False
    return pts


def memory_title(devices) -> str:
    """Axis title naming what was measured: GPU memory on CUDA, peak RAM on CPU."""
    kinds = set(devices)
    if kinds == {"cuda"}:
        return "train-phase peak GPU memory (GB)"
    if kinds <= {"cpu"}:
        return "train-phase peak RAM (GB)"
    return "train-phase peak memory (GB): GPU memory on CUDA, RAM on CPU"


def tooltip(row, metric: dict) -> str:
    """Every key figure of one point, as escaped HTML for the echarts tooltip."""
    kind = "GPU memory" if row.device == "cuda" else "RAM"
    fmt = "{:.1f}" if metric["scale"] == 100 else "{:.3f}"
    unit = "%" if metric["scale"] == 100 else ""
    if row.seeds > 1:
        value = (f"{safe(metric['name'])}: {fmt.format(row.y)}{unit}, mean of {row.seeds} seeds, 95% interval "
                 f"{fmt.format(row.lo)} to {fmt.format(row.hi)}")
    else:
        value = f"{safe(metric['name'])}: {fmt.format(row.y)}{unit} ± {fmt.format(row.hi - row.y)}"
    lines = [
        f"<b>{safe(row.model)} · {safe(row.method)}</b> [{safe(row.source)}]",
        f"run: {safe(row.run_id)}" + (f" and {row.seeds - 1} more seed(s)" if row.seeds > 1 else ""), value,
        f"MMLU n={num(row.mmlu_n, '{:.0f}')}, {num(row.mmlu_shots, '{:.0f}')}-shot" if metric["column"] == "acc" else "",
        f"train peak {kind}: {row.x:.3f} GB (load {num(gb(row.load_peak_bytes), '{:.3f}')}, "
        f"eval {num(gb(row.eval_peak_bytes), '{:.3f}')})",
        f"trainable: {count(row.trainable)} of {count(row.total)} ({num(row.trainable_pct, '{:.3g}')}%)",
        f"throughput: {num(row.tokens_per_s, '{:.1f}')} tokens/s, step p50 {num(row.step_p50_s)} s",
        f"wall: {num(row.wall_s, '{:.1f}')} s · device: {safe(row.device)} ({safe(row.device_name)})",
    ]
    if not style.missing(row.est_bytes):
        lines.append(f"estimate: {gb(row.est_bytes):.3f} GB, error {num(row.est_error_pct, '{:+.1f}')}%")
    if row.pareto:
        lines.append("on the Pareto front (no trained run uses less memory for a better value)")
    if row.method == "base":
        lines.append("the reference: not a candidate on the Pareto front")
    if style.missing(row.trainable) or row.trainable <= 0:
        lines.append(f"{safe(row.method)} {BASE_NOTE}")
    return "<br/>".join(line for line in lines if line)


def _point(row, many: bool, symbol: str) -> dict:
    return {"name": f"{row.method} [{row.source}]" if many else row.method, "run_id": row.run_id,
            "run_ids": list(row.run_ids), "seeds": int(row.seeds),
            "value": [round(float(row.x), 6), round(float(row.y), 6)], "symbolSize": float(row.size),
            "symbol": "diamond" if row.method == "base" else symbol}


def chart(runs: pd.DataFrame, metric: dict, *, summaries: dict = None) -> Scatter:
    """One headline scatter: bubbles, interval bars, base's reference line, the Pareto front."""
    pts = points(runs, metric, summaries=summaries)
    sources = list(dict.fromkeys(runs["source"]))
    symbol = {s: style.SOURCE_SYMBOLS[i % len(style.SOURCE_SYMBOLS)] for i, s in enumerate(sources)}
    many = len(sources) > 1
    scatter = Scatter(init_opts=opts.InitOpts(width=style.WIDTH, height=style.HEIGHT,
                                              animation_opts=opts.AnimationOpts(animation=False)))
    scatter.add_xaxis([])  # x comes with each point: [memory GB, metric]
    for method in style.method_order(pts["method"]) if len(pts) else []:
        rows = pts[pts["method"] == method]
        data = [dict(_point(row, many, symbol[row.source]), tooltip={"formatter": tooltip(row, metric)})
                for row in rows.itertuples()]
        scatter.add_yaxis(method, data, color=style.color(method), symbol_size=BASE_SIZE,
                          label_opts=opts.LabelOpts(position="right", formatter="{b}"),
                          itemstyle_opts=opts.ItemStyleOpts(color=style.color(method), opacity=0.75))
        series = scatter.options["series"][-1]
        series["labelLayout"] = {"hideOverlap": True}  # crowded plots stay legible
        if method == "base":  # the reference: a dashed horizontal line at each base value
            series["markLine"] = {"silent": True, "symbol": "none", "lineStyle": {"type": "dashed", "color": style.color("base")},
                                  "label": {"formatter": "base"}, "data": [{"yAxis": round(float(y), 6)} for y in rows["y"]]}
        bars = []
        for row in rows.itertuples():  # one vertical segment per point, '-' breaks the line
            bars += [[row.x, row.lo], [row.x, row.hi], [row.x, "-"]]
        scatter.options["series"].append({
            "type": "line", "name": method, "data": bars, "showSymbol": False, "silent": True,
            "connectNulls": False, "tooltip": {"show": False}, "lineStyle": {"width": 1.5},
            "itemStyle": {"color": style.color(method)}, "z": 1,
        })
    front = pts[pts["pareto"]].sort_values("x") if len(pts) else pts
    scatter.options["series"].append({
        "type": "line", "name": "Pareto front", "step": "end", "silent": True,
        "showSymbol": False, "data": [[round(float(x), 6), round(float(y), 6)] for x, y in zip(front["x"], front["y"])],
        "lineStyle": {"type": "dashed", "color": "#444"}, "itemStyle": {"color": "#444"}, "tooltip": {"show": False}, "z": 0,
    })
    scatter.options["legend"][0]["data"].append("Pareto front")
    bars_note = "bars: 95% interval over seeds where there are several, else ±1 stderr" if metric["err"] else \
        "bars: 95% interval over seeds where there are several"
    scatter.set_global_opts(
        title_opts=opts.TitleOpts(title=metric["title"],
                                  subtitle=f"bubble area: trainable parameters (log scale); {bars_note}; dashed: base, Pareto front"),
        xaxis_opts=opts.AxisOpts(type_="value", name=memory_title(pts["device"] if len(pts) else []),
                                 name_location="middle", name_gap=28, is_scale=True),
        yaxis_opts=opts.AxisOpts(type_="value", name=metric["label"], is_scale=True),
        tooltip_opts=opts.TooltipOpts(trigger="item"),
        legend_opts=opts.LegendOpts(type_="scroll", pos_top="bottom"),
    )
    return scatter
