"""Assemble the offline pages from templates/: the report (index.html) and the compare page.

Rendering only: a page shows every run (failed ones with status and error) and decides nothing;
the compare page shows the gate's verdicts, it does not make them. Text from records is escaped
by Jinja2's autoescape in HTML, and \\u-escaped in the embedded JSON so `</script>` inside a
record cannot end the script element.
"""

import json
from datetime import datetime, timezone
from pathlib import Path

import jinja2

from bench.results.report import load
from bench.results.report.style import count, missing, num
from bench.util import paths
from bench.util.errors import BenchError
from bench.util.units import gib

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined)


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


def cell(value, *, fmt=None, text=None, cls=None, title=None) -> dict:
    """One table cell: shown text, and the raw value the sort uses (numbers sort as numbers)."""
    if missing(value):
        return {"text": "-", "key": "", "num": fmt is not None, "cls": cls, "title": title}
    shown = text if text is not None else (fmt.format(value) if fmt else str(value))
    return {"text": shown, "key": value, "num": fmt is not None, "cls": cls, "title": title}


def _error_pct(row):
    """The record's estimate error %, or computed from prediction and measurement if it is absent."""
    if not missing(row.est_error_pct):
        return row.est_error_pct
    if missing(row.est_bytes) or missing(row.train_peak_bytes):
        return None
    return 100 * (row.est_bytes - row.train_peak_bytes) / row.train_peak_bytes


def _gib(value) -> str:
    return num(None if missing(value) else gib(value), "{:.3f}")


def table(runs) -> dict:
    """Columns and rows of the all-runs table, compact enough to fit the page: optional columns
    (source, seed, tasks, held-out loss, estimates) only when some record has them."""
    many = runs["source"].nunique() > 1
    seeds = runs["seed"].dropna().nunique() > 1
    tasks = load.target_tasks(runs)
    heldout = runs["heldout_loss"].notna().any()
    estimates = runs["est_bytes"].notna().any()
    columns = (["source"] if many else []) + ["model", "method"] + (["seed"] if seeds else []) + [
        "status", "error", "train peak GiB", "load / eval GiB", "MMLU % ± se",
    ] + [f"{t.removeprefix('ftbench_')} %" for t in tasks] + (["held-out loss"] if heldout else []) + [
        "trainable (%)", "tokens/s", "step p50 s", "wall s",
    ] + (["predicted train peak GiB", "estimate error %"] if estimates else [])
    rows = []
    for row in runs.itertuples():
        failed = row.status != "ok"
        cells = ([cell(row.source)] if many else []) + [
            cell(row.model, cls="wrap", title=f"run id: {row.run_id}"), cell(row.method),
            *([cell(row.seed, fmt="{:.0f}")] if seeds else []),
            cell(row.status, cls="status-bad" if failed else None), cell(row.error, cls="wrap"),
            cell(row.train_peak_bytes, fmt="{}", text=_gib(row.train_peak_bytes)),
            cell(row.load_peak_bytes, fmt="{}", text=f"{_gib(row.load_peak_bytes)} / {_gib(row.eval_peak_bytes)}"),
            cell(row.acc, fmt="{}", text=f"{num(row.acc * 100)} ± {num(row.stderr * 100, '{:.1f}')}"
                 if not missing(row.acc) else None),
            *[_task_cell(runs.at[row.Index, f"tasks.{t}.acc"]) for t in tasks],
            *([cell(row.heldout_loss, fmt="{:.3f}")] if heldout else []),
            cell(row.trainable, fmt="{}", text=f"{count(row.trainable)} ({num(row.trainable_pct, '{:.3g}')}%)"),
            cell(row.tokens_per_s, fmt="{:.1f}"), cell(row.step_p50_s, fmt="{:.3f}"), cell(row.wall_s, fmt="{:.1f}"),
        ]
        if estimates:
            cells += [cell(row.est_bytes, fmt="{}", text=_gib(row.est_bytes)), cell(_error_pct(row), fmt="{:+.1f}")]
        rows.append({"failed": failed, "cells": cells})
    return {"columns": columns, "rows": rows}


def _task_cell(value) -> dict:
    return cell(value, fmt="{}", text=None if missing(value) else f"{100 * value:.2f}")


def env_rows(envs: dict) -> list:
    """(key, [value per source]) over the union of keys, packages last."""
    keys = list(dict.fromkeys(k for env in envs.values() for k in env))
    keys.sort(key=lambda k: k.startswith("packages."))
    return [(key, [env.get(key, "-") for env in envs.values()]) for key in keys]


def _common(charts: list) -> dict:
    return {"built_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "charts": charts,
            "echarts_js": echarts_source(),
            "options_json": script_json({chart["id"]: chart["options"] for chart in charts})}


def render(*, loaded, charts: list, tables: list = (), image: str | None = None) -> str:
    """The report page. `charts`: [{"id", "options" (a dict), "notes"}]; `tables`: extra sortable
    tables [{"id", "title", "notes", "table", "tall"}] shown after the charts."""
    runs = loaded.runs
    return _ENV.get_template("index.html").render(
        title=", ".join(loaded.envs), sources=list(loaded.envs), problems=loaded.problems,
        n_runs=len(runs), n_ok=int((runs["status"] == "ok").sum()), image=image,
        table=table(runs), tables=list(tables), env_rows=env_rows(loaded.envs), notes=loaded.notes,
        **_common(charts),
    )


def render_compare(*, names: tuple, envs: tuple, table: dict, summary: str, charts: list, notes: list) -> str:
    """The compare page: baseline and candidate names and environments, the delta table, the gate's summary."""
    return _ENV.get_template("compare.html").render(names=names, envs=envs, table=table, summary=summary,
                                                    notes=notes, **_common(charts))
