"""Two charts from run records: where the memory went (measured, beside the planner's terms) and MFU.

    breakdown(records) -> Bar   two stacked bars per training run: `memory.breakdown` categories
                                (unattributed on top, never hidden) and the planner's `estimate.terms`
    mfu(records) -> Bar         `throughput.mfu` per training run, in percent, colour = method

Both take records as read from results.jsonl (upgraded) and leave out what did not measure: runs
that are not ok, `base`, a breakdown that recorded an error, a run without MFU. Bytes are stored
in bytes and shown in GiB here. The same kind of memory has one colour in both stacks, so a
measured segment sits beside the term that predicts it. Building never decides anything.
"""

from pyecharts import options as opts
from pyecharts.charts import Bar

from bench.results.report import style
from bench.util.units import gib

# colour per kind of memory; each measured category and each planner term belongs to one kind
KINDS = {
    "weights": "#2c7fb8", "quantisation": "#7fcdbb", "adapters": "#41ab5d", "gradients": "#fd8d3c",
    "optimizer": "#e6550d", "activations": "#d62728", "temporaries": "#9467bd", "inputs": "#8c564b",
    "baseline": "#bdbdbd", "allocator": "#969696", "unattributed": "#f0f0f0",
}
MEASURED_KIND = {"quant_constants": "quantisation", "adapters": "adapters", "gradients": "gradients",
                 "optimizer_state": "optimizer", "activations": "activations", "inputs": "inputs",
                 "activation_gradients": "temporaries", "temporaries": "temporaries", "other_tensors": "temporaries",
                 "process_baseline": "baseline", "buffers": "weights", "unattributed": "unattributed"}
PREDICTED_KIND = {"quant_constants": "quantisation", "adapters": "adapters", "gradients": "gradients",
                  "optimizer_states": "optimizer", "paged_optimizer_states": "optimizer",
                  "optimizer_temporaries": "temporaries", "baseline": "baseline", "allocator": "allocator"}


def kind(name: str, *, measured: bool) -> str:
    """The kind of memory a category (measured) or a planner term (predicted) names."""
    table = MEASURED_KIND if measured else PREDICTED_KIND
    if name in table:
        return table[name]
    if name.startswith(("parameters", "weights")):
        return "weights"
    return "temporaries" if "temporar" in name else "activations"


def _runs(records) -> list:
    return [r for r in records if r.get("status") == "ok" and r.get("method") != "base"]


def _names(runs) -> list:
    """'model · method', with the seed when one (model, method) ran with several, and #n for repeats."""
    seeds = {}
    for r in runs:
        seeds.setdefault((r["model"], r["method"]), set()).add(r.get("seed"))
    names, seen = [], {}
    for r in runs:
        name = f"{r['model']} · {r['method']}"
        if len(seeds[(r["model"], r["method"])]) > 1:
            name += f" s{r.get('seed')}"
        seen[name] = seen.get(name, 0) + 1
        names.append(style.safe(name if seen[name] == 1 else f"{name} #{seen[name]}"))
    return names


def _gib(value) -> float | None:
    return None if value is None else round(gib(value), 4)


def breakdown(records) -> Bar | None:
    """None when no run measured a breakdown. Stacked bars per run: measured categories (stack 'measured')
    beside predicted terms ('predicted')."""
    runs = [r for r in _runs(records) if "categories" in ((r.get("memory") or {}).get("breakdown") or {})]
    if not runs:
        return None
    measured = [dict(r["memory"]["breakdown"]["categories"],
                     unattributed=r["memory"]["breakdown"]["unattributed_bytes"])
                for r in runs]
    predicted = [(r.get("estimate") or {}).get("terms") or {} for r in runs]
    bar = Bar(init_opts=opts.InitOpts(width=style.WIDTH, height=style.HEIGHT,
                                      animation_opts=opts.AnimationOpts(animation=False)))
    bar.add_xaxis(_names(runs))
    for stack, rows, is_measured in (("measured", measured, True), ("predicted", predicted, False)):
        names = _ordered({k for row in rows for k in row}, measured=is_measured)
        for name in names:
            color = KINDS[kind(name, measured=is_measured)]
            bar.add_yaxis(f"{stack}: {style.safe(name)}", [_gib(row.get(name)) for row in rows], stack=stack,
                          color=color, label_opts=opts.LabelOpts(is_show=False),
                          itemstyle_opts=opts.ItemStyleOpts(color=color, border_color="#ffffff", border_width=0.5))
    bar.options.update(grid={"bottom": 140, "containLabel": False})
    return bar.set_global_opts(
        title_opts=opts.TitleOpts(title="Where the memory goes",
                                  subtitle="left bar: measured at the step's peak (memory.breakdown); "
                                           "right bar: the planner's terms (estimate)"),
        xaxis_opts=opts.AxisOpts(axislabel_opts=opts.LabelOpts(rotate=30, interval=0)),
        yaxis_opts=opts.AxisOpts(name="GiB"),
        tooltip_opts=opts.TooltipOpts(trigger="axis"),
        legend_opts=opts.LegendOpts(type_="scroll", pos_top="bottom"),
    )


def _ordered(names, *, measured: bool) -> list:
    """Resident state at the bottom, transient above, unattributed last: kinds in KINDS order."""
    order = list(KINDS)
    return sorted(names, key=lambda n: (order.index(kind(n, measured=measured)), n))


def mfu(records) -> Bar | None:
    """None when no run has an MFU. MFU per run in percent of the run's measured matmul peak
    (env.calibration, compute dtype)."""
    runs = [r for r in _runs(records) if (r.get("throughput") or {}).get("mfu") is not None]
    if not runs:
        return None
    bar = Bar(init_opts=opts.InitOpts(width=style.WIDTH, height=style.HEIGHT,
                                      animation_opts=opts.AnimationOpts(animation=False)))
    bar.add_xaxis(_names(runs))
    values = [opts.BarItem(name=name, value=round(100 * r["throughput"]["mfu"], 2),
                           itemstyle_opts=opts.ItemStyleOpts(color=style.color(r["method"])))
              for name, r in zip(_names(runs), runs)]
    bar.add_yaxis("MFU", values, label_opts=opts.LabelOpts(is_show=True, position="top", formatter="{c}%"))
    return bar.set_global_opts(
        title_opts=opts.TitleOpts(title="Model FLOPs utilisation",
                                  subtitle="model FLOPs per token x tokens/s over the run's own matmul peak "
                                           "(frozen weights: 4N, trainable: 6N, plus attention)"),
        xaxis_opts=opts.AxisOpts(axislabel_opts=opts.LabelOpts(rotate=30, interval=0)),
        yaxis_opts=opts.AxisOpts(name="MFU %", min_=0),
        tooltip_opts=opts.TooltipOpts(trigger="axis"),
        legend_opts=opts.LegendOpts(is_show=False),
    )
