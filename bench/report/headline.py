"""The headline chart: MMLU accuracy against train-phase peak memory, one series per method.

x = memory.train.peak_bytes / 1e9 (GB), y = mmlu.acc x 100 (%), bubble area linear in
log10(params.trainable) so that 0.1% and 100% trainable are both readable. `base` trains
nothing (0 parameters, no log): it gets BASE_SIZE, below every other bubble, and its
tooltip says so. Error bars are +-1 mmlu.stderr; the Pareto front (lower memory, higher
accuracy) is a dashed step line over all plotted runs.
"""

import math

import pandas as pd
from pyecharts import options as opts
from pyecharts.charts import Scatter

from bench.report import style
from bench.report.style import count, num, safe

D_MIN, D_MAX = 12.0, 56.0  # bubble diameters (px) for the fewest and most trainable params
BASE_SIZE = 7.0  # diameter for runs with 0 trainable params (base)
BASE_NOTE = "trains 0 parameters: drawn at the minimal bubble size"


def bubble_size(trainable, lo, hi) -> float:
    """Diameter whose area is linear in log10(trainable) between lo and hi trainable params."""
    if style.missing(trainable) or trainable <= 0:
        return BASE_SIZE
    if hi <= lo:
        return round(math.sqrt((D_MIN**2 + D_MAX**2) / 2), 2)
    share = (math.log10(trainable) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    return round(math.sqrt(D_MIN**2 + share * (D_MAX**2 - D_MIN**2)), 2)


def pareto(points: pd.DataFrame) -> pd.Series:
    """True where no other point has lower-or-equal memory and higher-or-equal accuracy (one strictly)."""
    flags = pd.Series(False, index=points.index)
    best = -math.inf
    for index, row in points.sort_values(["x", "y"], ascending=[True, False]).iterrows():
        if row["y"] > best:
            flags[index], best = True, row["y"]
    return flags


def points(runs: pd.DataFrame) -> pd.DataFrame:
    """The plotted runs: ok, with a train peak and an MMLU score; adds x, y, err, size, pareto."""
    ok = runs[(runs["status"] == "ok") & runs["train_peak_bytes"].notna() & runs["acc"].notna()].copy()
    ok["x"] = ok["train_peak_bytes"] / 1e9
    ok["y"] = ok["acc"] * 100
    ok["err"] = ok["stderr"].fillna(0) * 100
    positive = ok["trainable"][ok["trainable"] > 0]
    lo, hi = (positive.min(), positive.max()) if len(positive) else (1, 1)
    ok["size"] = [bubble_size(t, lo, hi) for t in ok["trainable"]]
    ok["pareto"] = pareto(ok) if len(ok) else pd.Series(dtype=bool)
    return ok


def memory_title(devices) -> str:
    """Axis title naming what was measured: GPU memory on CUDA, peak RAM on CPU."""
    kinds = set(devices)
    if kinds == {"cuda"}:
        return "train-phase peak GPU memory (GB)"
    if kinds <= {"cpu"}:
        return "train-phase peak RAM (GB)"
    return "train-phase peak memory (GB): GPU memory on CUDA, RAM on CPU"


def tooltip(row) -> str:
    """Every key figure of one run, as escaped HTML for the echarts tooltip."""
    kind = "GPU memory" if row.device == "cuda" else "RAM"
    lines = [
        f"<b>{safe(row.model)} · {safe(row.method)}</b> [{safe(row.source)}]",
        f"run: {safe(row.run_id)}",
        f"MMLU: {row.y:.1f}% ± {num(row.err, '{:.1f}')} (n={num(row.mmlu_n, '{:.0f}')}, "
        f"{num(row.mmlu_shots, '{:.0f}')}-shot)",
        f"train peak {kind}: {row.x:.3f} GB (load {num(row.load_peak_bytes / 1e9, '{:.3f}')}, "
        f"eval {num(row.eval_peak_bytes / 1e9, '{:.3f}')})",
        f"trainable: {count(row.trainable)} of {count(row.total)} ({num(row.trainable_pct, '{:.3g}')}%)",
        f"throughput: {num(row.tokens_per_s, '{:.1f}')} tokens/s, step p50 {num(row.step_p50_s)} s",
        f"wall: {num(row.wall_s, '{:.1f}')} s · device: {safe(row.device)} ({safe(row.device_name)})",
    ]
    if not style.missing(row.est_bytes):
        lines.append(f"estimate: {row.est_bytes / 1e9:.3f} GB, error {num(row.est_error_pct, '{:+.1f}')}%")
    if row.pareto:
        lines.append("on the Pareto front (no run uses less memory for more accuracy)")
    if style.missing(row.trainable) or row.trainable <= 0:
        lines.append(f"{safe(row.method)} {BASE_NOTE}")
    return "<br/>".join(lines)


def chart(runs: pd.DataFrame) -> Scatter:
    """The headline scatter with error bars and the Pareto front, built with pyecharts."""
    pts = points(runs)
    sources = list(dict.fromkeys(runs["source"]))
    symbol = {s: style.SOURCE_SYMBOLS[i % len(style.SOURCE_SYMBOLS)] for i, s in enumerate(sources)}
    many = len(sources) > 1
    scatter = Scatter(init_opts=opts.InitOpts(width=style.WIDTH, height=style.HEIGHT,
                                              animation_opts=opts.AnimationOpts(animation=False)))
    scatter.add_xaxis([])  # x comes with each point: [memory GB, accuracy %]
    for method in style.method_order(pts["method"]):
        rows = pts[pts["method"] == method]
        data = [{
            "name": f"{row.method} [{row.source}]" if many else row.method, "run_id": row.run_id,
            "value": [round(row.x, 6), round(row.y, 6)], "symbolSize": row.size,
            "symbol": symbol[row.source], "tooltip": {"formatter": tooltip(row)},
        } for row in rows.itertuples()]
        scatter.add_yaxis(method, data, color=style.color(method), symbol_size=BASE_SIZE,
                          label_opts=opts.LabelOpts(position="right", formatter="{b}"),
                          itemstyle_opts=opts.ItemStyleOpts(color=style.color(method), opacity=0.75))
        scatter.options["series"][-1]["labelLayout"] = {"hideOverlap": True}  # crowded plots stay legible
        bars = []
        for row in rows.itertuples():  # one vertical segment per run, '-' breaks the line
            bars += [[row.x, row.y - row.err], [row.x, row.y + row.err], [row.x, "-"]]
        scatter.options["series"].append({
            "type": "line", "name": method, "data": bars, "showSymbol": False, "silent": True,
            "connectNulls": False, "tooltip": {"show": False}, "lineStyle": {"width": 1.5},
            "itemStyle": {"color": style.color(method)}, "z": 1,
        })
    front = pts[pts["pareto"]].sort_values("x")
    scatter.options["series"].append({
        "type": "line", "name": "Pareto front", "step": "end", "silent": True, "showSymbol": False,
        "data": [[round(x, 6), round(y, 6)] for x, y in zip(front["x"], front["y"])],
        "lineStyle": {"type": "dashed", "color": "#444"}, "itemStyle": {"color": "#444"},
        "tooltip": {"show": False}, "z": 0,
    })
    scatter.options["legend"][0]["data"].append("Pareto front")
    scatter.set_global_opts(
        title_opts=opts.TitleOpts(title="MMLU accuracy vs train-phase peak memory",
                                  subtitle="bubble area: trainable parameters (log scale); bars: ±1 stderr"),
        xaxis_opts=opts.AxisOpts(type_="value", name=memory_title(pts["device"]), name_location="middle",
                                 name_gap=28, is_scale=True),
        yaxis_opts=opts.AxisOpts(type_="value", name="MMLU accuracy (%)", is_scale=True),
        tooltip_opts=opts.TooltipOpts(trigger="item"),
        legend_opts=opts.LegendOpts(type_="scroll", pos_top="bottom"),
    )
    return scatter
