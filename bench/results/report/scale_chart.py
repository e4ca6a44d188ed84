"""The chart people came for: train-phase peak memory against model size, measured and planned.

    chart(ladder, lines) -> dict   echarts options, two panels sharing the title and legend:
      top     log-log: per method the measured train peaks (solid line), the planner at the same
              settings out to 70B (dashed), runs that ran out of memory (triangle at their budget:
              they needed more), the machine's memory and the budget as horizontal lines
      bottom  linear: each measured run's peak stacked by component (scale.COMPONENTS), the
              planner's figure for that run (a dash), an oom run as an empty dashed bar to its budget

Built from bench.results.report.scale's data; figures shown in GiB (2^30 bytes, as the console's MiB).
Draws, decides nothing.
"""

import math

from bench.models.random_weights import SHAPE_PREFIX
from bench.results.report import style
from bench.results.report.scale import COMPONENTS
from bench.util.units import gib

COMPONENT_COLORS = {"weights": "#2c7fb8", "gradients": "#fd8d3c", "optimizer state": "#e6550d",
                    "activations": "#d62728", "the rest": "#bdbdbd"}
OOM = "out of memory (needed more than the budget)"
PLANNED = "planner, this run (estimate)"


def _b(params) -> float:
    return round(params / 1e9, 4)


def _gib(value) -> float:
    return round(gib(value), 3)


def _short(model: str) -> str:
    return str(model).removeprefix(SHAPE_PREFIX)


def _decade(value, up: bool) -> float:
    return 10 ** (math.ceil(math.log10(value)) if up else math.floor(math.log10(value)))


def _hlines(ladder, *, labels: bool) -> list:
    lines = []
    if ladder.machine_bytes:
        lines.append({"yAxis": _gib(ladder.machine_bytes),
                      "lineStyle": {"color": "#333", "type": "solid", "width": 1.5},
                      "label": {"show": labels, "position": "insideStartTop",
                                "formatter": f"this machine's memory: {_gib(ladder.machine_bytes):.1f} GiB"}})
    if ladder.budget_bytes:
        lines.append({"yAxis": _gib(ladder.budget_bytes),
                      "lineStyle": {"color": "#b00", "type": "dashed", "width": 1.2},
                      "label": {"show": labels, "position": "insideEndTop",
                                "formatter": f"budget (--max-memory): {_gib(ladder.budget_bytes):.1f} GiB"}})
    return lines


def _tip(p) -> str:
    head = f"<b>{style.safe(p['model'])} · {p['method']}</b> ({p['params'] / 1e9:.2f}B params)<br/>"
    if p["status"] == "oom":
        budget = f"{_gib(p['budget_bytes']):.2f} GiB" if p["budget_bytes"] else "its budget"
        return head + f"out of memory under {budget}: needed more<br/>{style.safe(p['error'] or '')}"
    text = head + f"measured train peak {_gib(p['peak_bytes']):.2f} GiB"
    if p["estimate"]:
        text += f"<br/>planner {_gib(p['estimate']['total_bytes']):.2f} GiB"
    return text + f"<br/>run {style.safe(p['run_id'])}"


def _top_series(ladder, lines) -> list:
    series, methods = [], style.method_order({p["method"] for p in ladder.points})
    last = {m: (lines.get(m) or [{"total_bytes": 0}])[-1]["total_bytes"] for m in methods}
    rank = {m: i for i, m in enumerate(sorted(methods, key=lambda m: -last[m]))}  # 0: the highest at 70B
    for method in methods:
        mine = [p for p in ladder.points if p["method"] == method]
        color = style.color(method)
        measured = [{"value": [_b(p["params"]), _gib(p["peak_bytes"])], "tooltip": {"formatter": _tip(p)}}
                    for p in mine if p["status"] == "ok"]
        series.append({"type": "line", "name": method, "xAxisIndex": 0, "yAxisIndex": 0, "data": measured,
                       "color": color, "symbol": "circle", "symbolSize": 9, "lineStyle": {"width": 2.5}})
        plan = lines.get(method) or []
        data = [{"value": [_b(q["params"]), _gib(q["total_bytes"])],
                 "tooltip": {"formatter": f"<b>planner · {method}</b><br/>{style.safe(q['label'])} "
                                          f"({q['params'] / 1e9:.2f}B): {_gib(q['total_bytes']):.1f} GiB"}}
                for q in plan]
        if data:
            shift = 14 * (rank[method] - (len(methods) - 1) / 2)  # labels at 70B apart, highest on top
            data[-1]["label"] = {"show": True, "position": "right", "color": color, "offset": [0, shift],
                                 "formatter": f"{method} {_gib(plan[-1]['total_bytes']):,.0f} GiB"}
        series.append({"type": "line", "name": method, "xAxisIndex": 0, "yAxisIndex": 0, "data": data,
                       "color": color, "symbol": "emptyCircle", "symbolSize": 6,
                       "lineStyle": {"type": "dashed", "width": 1.5}})
        ooms = [{"value": [_b(p["params"]), _gib(p["budget_bytes"] or p["reached_bytes"] or 0)],
                 "tooltip": {"formatter": _tip(p)}} for p in mine if p["status"] == "oom"]
        if ooms:
            series.append({"type": "scatter", "name": OOM, "xAxisIndex": 0, "yAxisIndex": 0, "data": ooms,
                           "symbol": "triangle", "symbolSize": 16,
                           "itemStyle": {"color": color, "borderColor": "#b00", "borderWidth": 2}})
    if series and _hlines(ladder, labels=True):
        series[0]["markLine"] = {"silent": True, "symbol": "none", "data": _hlines(ladder, labels=True)}
    return series


def _bottom(ladder) -> tuple:
    """Category names (one per run) and the stacked series of the lower panel."""
    runs = ladder.points
    names = [f"{_short(p['model'])}\n{p['method']}" for p in runs]
    series = []
    for name in COMPONENTS:
        data = [None if p["status"] != "ok" or p["components"] is None else
                {"value": _gib(p["components"][name]),
                 "tooltip": {"formatter": f"<b>{style.safe(p['model'])} · {p['method']}</b><br/>{name}: "
                                          f"{_gib(p['components'][name]):.2f} GiB of {_gib(p['peak_bytes']):.2f} GiB"}}
                for p in runs]
        series.append({"type": "bar", "name": name, "stack": "measured", "xAxisIndex": 1, "yAxisIndex": 1,
                       "data": data, "color": COMPONENT_COLORS[name], "barMaxWidth": 36,
                       "itemStyle": {"borderColor": "#fff", "borderWidth": 0.5}})
    whole = [_gib(p["peak_bytes"]) if p["status"] == "ok" and p["components"] is None else None for p in runs]
    if any(v is not None for v in whole):
        series.append({"type": "bar", "name": "not broken down", "stack": "measured", "xAxisIndex": 1,
                       "yAxisIndex": 1, "data": whole, "color": "#eeeeee", "barMaxWidth": 36})
    ooms = [{"value": _gib(p["budget_bytes"] or p["reached_bytes"] or 0), "tooltip": {"formatter": _tip(p)}}
            if p["status"] == "oom" else None for p in runs]
    if any(ooms):
        series.append({"type": "bar", "name": OOM, "stack": "measured", "xAxisIndex": 1, "yAxisIndex": 1,
                       "data": ooms, "barMaxWidth": 36, "color": "#b00",
                       "itemStyle": {"color": "rgba(0,0,0,0)", "borderColor": "#b00", "borderType": "dashed",
                                     "borderWidth": 1.5},
                       "label": {"show": True, "position": "insideTop", "formatter": "oom", "color": "#b00"}})
    planned = [_gib(p["estimate"]["total_bytes"]) if p["status"] == "ok" and p["estimate"] else None for p in runs]
    series.append({"type": "line", "name": PLANNED, "xAxisIndex": 1, "yAxisIndex": 1, "data": planned,
                   "color": "#000", "symbol": "rect", "symbolSize": [26, 3], "lineStyle": {"opacity": 0},
                   "connectNulls": False})
    lines = _hlines(ladder, labels=False)
    if lines:
        series[0]["markLine"] = {"silent": True, "symbol": "none", "data": lines}
    return names, series


def _ranges(ladder, lines) -> tuple:
    params = [p["params"] for p in ladder.points] + [q["params"] for line in lines.values() for q in line]
    ys = [v for v in ([p["peak_bytes"] for p in ladder.points] + [p["budget_bytes"] for p in ladder.points]
                      + [q["total_bytes"] for line in lines.values() for q in line]
                      + [ladder.machine_bytes]) if v]
    return ((_decade(min(params) / 1e9, False), _decade(max(params) / 1e9, True)),
            (_decade(gib(min(ys)), False), _decade(gib(max(ys)), True)))


def subtitle(ladder) -> str:
    s = ladder.setting
    parts = [f"batch {s['batch_size']} x {s['seq_len']} tokens", s.get("policy") or str(s.get("precision")),
             str(s.get("optimizer")), f"LoRA r {s.get('lora_r')} on {s.get('target_modules')}",
             "checkpointing on" if s.get("grad_checkpointing") else "no checkpointing"]
    return ", ".join(str(p) for p in parts if p)


def chart(ladder, lines: dict) -> dict:
    """The two-panel options dict (see the module docstring)."""
    (x0, x1), (y0, y1) = _ranges(ladder, lines)
    names, bottom = _bottom(ladder)
    top = _top_series(ladder, lines)  # a method's planner line shares its legend entry
    return {
        "animation": False,
        "title": {"text": "Train-phase peak memory against model size",
                  "subtext": f"{subtitle(ladder)}\nTop: measured (solid) and the planner (dashed), log-log. "
                             "Bottom: each measured run by component.",
                  "subtextStyle": {"lineHeight": 16}, "itemGap": 6},
        "tooltip": {"trigger": "item"},
        "legend": {"bottom": 0},
        "grid": [{"top": 100, "height": "34%", "left": 70, "right": 150},
                 {"top": "57%", "bottom": 110, "left": 70, "right": 150}],
        "xAxis": [{"type": "log", "gridIndex": 0, "min": x0, "max": x1, "name": "parameters (billions)",
                   "nameLocation": "middle", "nameGap": 24},
                  {"type": "category", "gridIndex": 1, "data": names,
                   "axisLabel": {"interval": 0, "fontSize": 10, "lineHeight": 13}}],
        "yAxis": [{"type": "log", "gridIndex": 0, "min": y0, "max": y1, "name": "train peak (GiB)"},
                  {"type": "value", "gridIndex": 1, "name": "GiB"}],
        "series": top + bottom,
    }
