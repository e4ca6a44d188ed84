"""Shared look and text safety for every chart: colours per method, HTML-safe strings, numbers."""

import html
import math

from bench.results.schema import METHODS

# One colour per method, fixed so the same method looks the same in every chart and report.
METHOD_COLORS = {
    "base": "#7f7f7f", "full": "#d62728", "lora": "#1f77b4",
    "qlora": "#2ca02c", "dora": "#9467bd", "lora8": "#ff7f0e",
}
SOURCE_SYMBOLS = ("circle", "rect", "triangle", "diamond", "roundRect", "pin", "arrow")
# With several models in one chart, colour tells the models apart and the marker the methods.
MODEL_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
METHOD_SYMBOLS = {"base": "diamond", "full": "rect", "lora": "circle", "qlora": "triangle", "dora": "roundRect",
                  "lora8": "pin"}
WIDTH, HEIGHT = "100%", "460px"


def method_order(methods) -> list:
    """Methods in registry order; unknown ones (future methods) after, alphabetically."""
    present = set(methods)
    return [m for m in METHODS if m in present] + sorted(present - set(METHODS))


def color(method: str) -> str:
    return METHOD_COLORS.get(method, "#17becf")


def model_color(index: int) -> str:
    return MODEL_COLORS[index % len(MODEL_COLORS)]


def method_symbol(method: str) -> str:
    return METHOD_SYMBOLS.get(method, "arrow")


def safe(text) -> str:
    """Text from a record made safe inside echarts' HTML tooltips.

    html.escape stops markup; braces become entities so echarts' `{a}`/`{b}` templates
    cannot pull other values into a string that came from a record.
    """
    return html.escape(str(text)).replace("{", "&#123;").replace("}", "&#125;")


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def num(value, fmt: str = "{:.2f}", none: str = "-") -> str:
    """Format a figure for display; '-' where the run never reached it."""
    return none if missing(value) else fmt.format(value)


def count(value) -> str:
    """Parameter counts: 4.88M, 134.5M, 1.2B."""
    if missing(value):
        return "-"
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{int(value)}"
