"""Assemble the offline page: the runs table, the environments, the charts' options, echarts inlined.

Rendering only: the page shows every run (failed ones with status and error) and decides
nothing. Text from records is escaped by Jinja2's autoescape in HTML, and \\u-escaped in the
embedded JSON so `</script>` inside a record cannot end the script element.
"""

import json
from datetime import datetime, timezone

import jinja2

from bench import paths
from bench.errors import BenchError
from bench.report.style import count, missing, num
from bench.report.template import PAGE

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


def echarts_source() -> str:
    """The verified echarts.min.js from the offline cache; BenchError if set-up never ran."""
    path = paths.echarts_js()
    if not path.is_file():
        raise BenchError(f"echarts library not found at {path}; run `bash scripts/setup.sh` to fetch it")
    text = path.read_text(encoding="utf-8")
    if "</script" in text.lower():
        raise BenchError(f"{path} contains '</script' and cannot be inlined; rerun `bash scripts/setup.sh`")
    return text


def script_json(value) -> str:
    """JSON safe inside <script>: `<`, `>`, `&` only occur in strings, so \\u-escape them there."""
    text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _cell(value, *, fmt=None, text=None, cls=None) -> dict:
    """One table cell: shown text, and the raw value the sort uses (numbers sort as numbers)."""
    if missing(value):
        return {"text": "-", "key": "", "num": fmt is not None, "cls": cls}
    shown = text if text is not None else (fmt.format(value) if fmt else str(value))
    return {"text": shown, "key": value, "num": fmt is not None, "cls": cls}


def _error_pct(row):
    """The record's estimate error %, or computed from prediction and measurement if it is absent."""
    if not missing(row.est_error_pct):
        return row.est_error_pct
    if missing(row.est_bytes) or missing(row.train_peak_bytes):
        return None
    return 100 * (row.est_bytes - row.train_peak_bytes) / row.train_peak_bytes


def table(runs) -> dict:
    """Columns and rows of the all-runs table; estimate columns only when some record has one."""
    many = runs["source"].nunique() > 1
    estimates = runs["est_bytes"].notna().any()
    columns = (["source"] if many else []) + [
        "model", "method", "status", "error", "train peak GB", "load peak GB", "eval peak GB",
        "MMLU %", "± %", "trainable", "trainable %", "tokens/s", "step p50 s", "wall s",
    ] + (["predicted train peak GB", "estimate error %"] if estimates else []) + ["run id"]
    rows = []
    for row in runs.itertuples():
        failed = row.status != "ok"
        cells = ([_cell(row.source)] if many else []) + [
            _cell(row.model), _cell(row.method),
            _cell(row.status, cls="status-bad" if failed else None), _cell(row.error),
            *[_cell(getattr(row, f"{p}_peak_bytes"), fmt="{:.3f}",
                    text=num(getattr(row, f"{p}_peak_bytes") and getattr(row, f"{p}_peak_bytes") / 1e9, "{:.3f}"))
              for p in ("train", "load", "eval")],
            _cell(row.acc, fmt="{:.2f}", text=num(row.acc and row.acc * 100, "{:.2f}")),
            _cell(row.stderr, fmt="{:.2f}", text=num(row.stderr and row.stderr * 100, "{:.2f}")),
            _cell(row.trainable, fmt="{}", text=count(row.trainable)),
            _cell(row.trainable_pct, fmt="{:.3g}"), _cell(row.tokens_per_s, fmt="{:.1f}"),
            _cell(row.step_p50_s, fmt="{:.3f}"), _cell(row.wall_s, fmt="{:.1f}"),
        ]
        if estimates:
            cells += [_cell(row.est_bytes, fmt="{:.3f}", text=num(row.est_bytes and row.est_bytes / 1e9, "{:.3f}")),
                      _cell(_error_pct(row), fmt="{:+.1f}")]
        cells.append(_cell(row.run_id))
        rows.append({"failed": failed, "cells": cells})
    return {"columns": columns, "rows": rows}


def env_rows(envs: dict) -> list:
    """(key, [value per source]) over the union of keys, packages last."""
    keys = list(dict.fromkeys(k for env in envs.values() for k in env))
    keys.sort(key=lambda k: k.startswith("packages."))
    return [(key, [env.get(key, "-") for env in envs.values()]) for key in keys]


def render(*, loaded, charts: list, image: str | None = None) -> str:
    """The whole page as a string. `charts`: [{"id", "options" (a dict), "notes"}]."""
    runs = loaded.runs
    return _ENV.from_string(PAGE).render(
        title=", ".join(loaded.envs), sources=list(loaded.envs), problems=loaded.problems,
        n_runs=len(runs), n_ok=int((runs["status"] == "ok").sum()),
        built_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), image=image,
        charts=charts, table=table(runs), env_rows=env_rows(loaded.envs),
        echarts_js=echarts_source(),
        options_json=script_json({chart["id"]: chart["options"] for chart in charts}),
    )
