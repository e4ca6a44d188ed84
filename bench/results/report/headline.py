"""The headline charts: one benefit metric against train-phase peak memory, one chart per metric
measured (MMLU accuracy, the target task's accuracy, held-out loss), one series per method.

x = memory.train.peak_bytes in GiB (2**30 bytes, as the console's MiB); y = the metric (accuracy x 100,
or the loss); bubble
area linear in log10(params.trainable) so that 0.1% and 100% trainable are both readable.
`base` trains nothing: it is the reference, drawn as a small diamond with a dashed horizontal
line at its value, and it is not a candidate on the Pareto front (the dashed step line over the
trained methods: lower memory and a better metric). With several models, colour is the model, the
marker is the method, every label reads "model · method", and each model (on each data set) has
its own Pareto front: a front across models would compare different things. Runs of one method with several seeds are
drawn as one point, their mean, with the interval from bench.results.compare's seed summary; a single
run's bars are +-1 stderr (accuracy) or absent (loss).
"""

import math

import pandas as pd
from pyecharts import options as opts
from pyecharts.charts import Scatter

from bench.results.report import load, style
from bench.results.report.style import count, num, safe
from bench.util.units import gib

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
            row.update(x=gib(group["train_peak_bytes"].mean()), y=summary["mean"] * metric["scale"],
                       lo=summary["lo"] * metric["scale"], hi=summary["hi"] * metric["scale"],
                       seeds=len(summary["seeds"]), run_ids=list(group["run_id"]))
            rows.append(row)
            continue
        for _, run in group.iterrows():  # no summary: every run is its own point
            row = run.to_dict()
            err = run.get(metric["err"]) if metric["err"] else None
            err = 0.0 if style.missing(err) else err * metric["scale"]
            y = run[metric["column"]] * metric["scale"]
            row.update(x=gib(run["train_peak_bytes"]), y=y, lo=y - err, hi=y + err, seeds=1, run_ids=[run["run_id"]])
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
    flags = pd.Series(False, index=pts.index)
    for _, group in trained.groupby(front_keys(trained), sort=False, dropna=False):  # one front per model and data set
        flags.update(pareto(group, higher=metric["higher"]))
    pts["pareto"] = flags.astype(bool)
    return pts


DATA_COLUMN = "config.data_source"


def front_keys(pts: pd.DataFrame) -> list:
    """What a Pareto front is drawn within: one model on one data set (a front across models or data
    sets would compare what the methods did to different things)."""
    return ["model"] + ([DATA_COLUMN] if DATA_COLUMN in pts else [])


def several_models(pts: pd.DataFrame) -> bool:
    return len(pts) > 0 and pts["model"].nunique() > 1


def label(row, *, models: bool, sources: bool) -> str:
    """A point's name: "model · method" when the chart holds several models, the source appended
    when it holds several sources."""
    name = f"{row.model} · {row.method}" if models else row.method
    return f"{name} [{row.source}]" if sources else name


def memory_title(devices) -> str:
    """Axis title naming what was measured: GPU memory on CUDA, peak RAM on CPU."""
    kinds = set(devices)
    if kinds == {"cuda"}:
        return "train-phase peak GPU memory (GiB)"
    if kinds <= {"cpu"}:
        return "train-phase peak RAM (GiB)"
    return "train-phase peak memory (GiB): GPU memory on CUDA, RAM on CPU"


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
        (f"MMLU n={num(row.mmlu_n, '{:.0f}')}, {num(row.mmlu_shots, '{:.0f}')}-shot"
         if metric["column"] == "acc" else ""),
        f"train peak {kind}: {row.x:.3f} GiB (load {num(gib(row.load_peak_bytes), '{:.3f}')}, "
        f"eval {num(gib(row.eval_peak_bytes), '{:.3f}')})",
        f"trainable: {count(row.trainable)} of {count(row.total)} ({num(row.trainable_pct, '{:.3g}')}%)",
        f"throughput: {num(row.tokens_per_s, '{:.1f}')} tokens/s, step p50 {num(row.step_p50_s)} s",
        f"wall: {num(row.wall_s, '{:.1f}')} s · device: {safe(row.device)} ({safe(row.device_name)})",
    ]
    if not style.missing(row.est_bytes):
        lines.append(f"estimate: {gib(row.est_bytes):.3f} GiB, error {num(row.est_error_pct, '{:+.1f}')}%")
    if row.pareto:
        lines.append("on the Pareto front (no trained run uses less memory for a better value)")
    if row.method == "base":
        lines.append("the reference: not a candidate on the Pareto front")
    if style.missing(row.trainable) or row.trainable <= 0:
        lines.append(f"{safe(row.method)} {BASE_NOTE}")
    return "<br/>".join(line for line in lines if line)


def _point(row, many: bool, symbol: str, models: bool = False) -> dict:
    return {"name": label(row, models=models, sources=many), "run_id": row.run_id,
            "run_ids": list(row.run_ids), "seeds": int(row.seeds),
            "value": [round(float(row.x), 6), round(float(row.y), 6)], "symbolSize": float(row.size),
            "symbol": "diamond" if row.method == "base" and not models else symbol}


def _series(pts: pd.DataFrame, models: bool) -> list:
    """(model, method) per series: one per method, or per model and method when there are several models."""
    if not len(pts):
        return []
    if not models:
        return [(None, method) for method in style.method_order(pts["method"])]
    return [(model, method) for model in dict.fromkeys(pts["model"])
            for method in style.method_order(pts[pts["model"] == model]["method"])]


def chart(runs: pd.DataFrame, metric: dict, *, summaries: dict = None) -> Scatter:
    """One headline scatter: bubbles, interval bars, base's reference line, the Pareto front."""
    pts = points(runs, metric, summaries=summaries)
    sources = list(dict.fromkeys(runs["source"]))
    symbol = {s: style.SOURCE_SYMBOLS[i % len(style.SOURCE_SYMBOLS)] for i, s in enumerate(sources)}
    many = len(sources) > 1
    scatter = Scatter(init_opts=opts.InitOpts(width=style.WIDTH, height=style.HEIGHT,
                                              animation_opts=opts.AnimationOpts(animation=False)))
    scatter.add_xaxis([])  # x comes with each point: [memory GiB, metric]
    models = several_models(pts)
    model_order = list(dict.fromkeys(pts["model"])) if models else []
    for model, method in _series(pts, models):
        rows = pts[(pts["method"] == method) & ((pts["model"] == model) if models else True)]
        name = f"{model} · {method}" if models else method
        colour = style.model_color(model_order.index(model)) if models else style.color(method)
        shape = style.method_symbol(method) if models else None
        data = [dict(_point(row, many, shape or symbol[row.source], models),
                     tooltip={"formatter": tooltip(row, metric)})
                for row in rows.itertuples()]
        scatter.add_yaxis(name, data, color=colour, symbol_size=BASE_SIZE,
                          label_opts=opts.LabelOpts(position="right", formatter="{b}"),
                          itemstyle_opts=opts.ItemStyleOpts(color=colour, opacity=0.75))
        series = scatter.options["series"][-1]
        series["labelLayout"] = {"hideOverlap": True}  # crowded plots stay legible
        if method == "base":  # the reference: a dashed horizontal line at each base value
            series["markLine"] = {"silent": True, "symbol": "none", "lineStyle": {"type": "dashed", "color": colour},
                                  "label": {"formatter": name},
                                  "data": [{"yAxis": round(float(y), 6)} for y in rows["y"]]}
        bars = []
        for row in rows.itertuples():  # one vertical segment per point, '-' breaks the line
            bars += [[row.x, row.lo], [row.x, row.hi], [row.x, "-"]]
        scatter.options["series"].append({
            "type": "line", "name": name, "data": bars, "showSymbol": False, "silent": True,
            "connectNulls": False, "tooltip": {"show": False}, "lineStyle": {"width": 1.5},
            "itemStyle": {"color": colour}, "z": 1,
        })
    fronts = pts[pts["pareto"]] if len(pts) else pts
    for key, front in (fronts.groupby(front_keys(fronts), sort=False, dropna=False) if models else [(None, fronts)]):
        front = front.sort_values("x")
        name = f"Pareto front · {front['model'].iloc[0]}" if models else "Pareto front"
        colour = style.model_color(model_order.index(front["model"].iloc[0])) if models else "#444"
        scatter.options["series"].append({
            "type": "line", "name": name, "step": "end", "silent": True,
            "showSymbol": False,
            "data": [[round(float(x), 6), round(float(y), 6)] for x, y in zip(front["x"], front["y"])],
            "lineStyle": {"type": "dashed", "color": colour}, "itemStyle": {"color": colour},
            "tooltip": {"show": False},
            "z": 0,
        })
        scatter.options["legend"][0]["data"].append(name)
    bars_note = "bars: 95% interval over seeds where there are several, else ±1 stderr" if metric["err"] else \
        "bars: 95% interval over seeds where there are several"
    scatter.set_global_opts(
        title_opts=opts.TitleOpts(title=metric["title"],
                                  subtitle=f"bubble area: trainable parameters (log scale); {bars_note}; "
                                           "dashed: base, Pareto front"),
        xaxis_opts=opts.AxisOpts(type_="value", name=memory_title(pts["device"] if len(pts) else []),
                                 name_location="middle", name_gap=28, is_scale=True),
        yaxis_opts=opts.AxisOpts(type_="value", name=metric["label"], is_scale=True),
        tooltip_opts=opts.TooltipOpts(trigger="item"),
        legend_opts=opts.LegendOpts(type_="scroll", pos_top="bottom"),
    )
    return scatter
