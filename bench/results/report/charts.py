"""Companion charts, one pyecharts builder per chart: throughput, memory per phase, loss.

Each takes the runs frame from load.py and returns a pyecharts chart; figures are converted
from base units here, for display only. Failed runs have no figures and are left out (the
table lists them with their status and error).
"""

import pandas as pd
from pyecharts import options as opts
from pyecharts.charts import Bar, Line

from bench.results.report import style
from bench.results.schema import PHASES
from bench.util.units import gib

PHASE_COLORS = {"load": "#9ecae1", "train": "#3182bd", "eval": "#fd8d3c"}


def _init() -> opts.InitOpts:
    return opts.InitOpts(width=style.WIDTH, height=style.HEIGHT,
                         animation_opts=opts.AnimationOpts(animation=False))


def run_names(runs: pd.DataFrame) -> list:
    """A short, unique name per run for category axes: 'model · method [source] #n'."""
    many = runs["source"].nunique() > 1
    names, seen = [], {}
    for row in runs.itertuples():
        name = f"{row.model} · {row.method}" + (f" [{row.source}]" if many else "")
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return names


def _zoom(n_categories: int) -> list:
    """A slider once a category axis holds too many bars to read at once."""
    return [opts.DataZoomOpts(range_start=0, range_end=min(100, 100 * 30 / n_categories))] if n_categories > 30 else []


def throughput(runs: pd.DataFrame) -> Bar:
    """Training tokens/s by model (x) and method (series); the mean where a pair ran more than once."""
    measured = runs[(runs["status"] == "ok") & runs["tokens_per_s"].notna()].copy()
    many = runs["source"].nunique() > 1
    measured["group"] = measured["model"] + (" [" + measured["source"] + "]" if many else "")
    table = measured.pivot_table(index="group", columns="method", values="tokens_per_s", aggfunc="mean", sort=False)
    bar = Bar(init_opts=_init()).add_xaxis([str(g) for g in table.index])
    for method in style.method_order(table.columns):
        values = [None if pd.isna(v) else round(float(v), 2) for v in table[method]]
        bar.add_yaxis(method, values, color=style.color(method), label_opts=opts.LabelOpts(is_show=False))
    return bar.set_global_opts(
        title_opts=opts.TitleOpts(title="Training throughput", subtitle="real tokens per second, warm-up excluded"),
        yaxis_opts=opts.AxisOpts(name="tokens/s"),
        tooltip_opts=opts.TooltipOpts(trigger="axis"),
        legend_opts=opts.LegendOpts(type_="scroll", pos_top="bottom"),
        datazoom_opts=_zoom(len(table.index)),
    )


def memory(runs: pd.DataFrame) -> Bar:
    """Peak memory of each phase (load, train, eval) for every run that measured them, in GiB."""
    measured = runs[runs["train_peak_bytes"].notna()]
    bar = Bar(init_opts=_init()).add_xaxis(run_names(measured))
    for phase in PHASES:
        values = [None if pd.isna(v) else round(gib(v), 4) for v in measured[f"{phase}_peak_bytes"]]
        bar.add_yaxis(phase, values, color=PHASE_COLORS[phase], label_opts=opts.LabelOpts(is_show=False))
    devices = set(measured["device"].dropna())
    what = "GPU memory" if devices == {"cuda"} else "RAM" if devices <= {"cpu"} else "memory (GPU on CUDA, RAM on CPU)"
    bar.options.update(grid={"bottom": 120, "containLabel": False})  # room for slanted names and legend
    return bar.set_global_opts(
        title_opts=opts.TitleOpts(title="Peak memory per phase", subtitle=f"peak {what}, reset at each phase start"),
        xaxis_opts=opts.AxisOpts(axislabel_opts=opts.LabelOpts(rotate=30, interval=0)),
        yaxis_opts=opts.AxisOpts(name="GiB"),
        tooltip_opts=opts.TooltipOpts(trigger="axis"),
        legend_opts=opts.LegendOpts(type_="scroll", pos_top="bottom"),
        datazoom_opts=_zoom(len(measured)),
    )


def loss(runs: pd.DataFrame) -> Line:
    """Training loss per optimizer step, one line per run that trained."""
    trained = runs[runs["loss"].map(len) > 0]
    line = Line(init_opts=_init())
    for name, row in zip(run_names(trained), trained.itertuples()):
        data = [opts.LineItem(value=[step, value]) for step, value in enumerate(row.loss, start=1)]
        line.add_yaxis(name, data, color=style.color(row.method), is_symbol_show=False,
                       label_opts=opts.LabelOpts(is_show=False))
    return line.set_global_opts(
        title_opts=opts.TitleOpts(title="Training loss", subtitle="per optimizer step, colour = method"),
        xaxis_opts=opts.AxisOpts(type_="value", name="step", min_=1),
        yaxis_opts=opts.AxisOpts(name="loss", is_scale=True),
        tooltip_opts=opts.TooltipOpts(trigger="axis"),
        legend_opts=opts.LegendOpts(type_="scroll", pos_top="bottom"),
    )


MMLU_CATEGORIES = ("stem", "humanities", "social_sciences", "other")


def run_groups(runs: pd.DataFrame) -> list:
    """[(name, rows)] of ok runs per (source, model, method): the seeds of one method together."""
    ok = runs[runs["status"] == "ok"]
    many = runs["source"].nunique() > 1
    out = []
    for (source, model, method), rows in ok.groupby(["source", "model", "method"], sort=False):
        seeds = rows["seed"].dropna().nunique()
        name = f"{model} · {method}" + (f" [{source}]" if many else "") + (f" ({seeds} seeds)" if seeds > 1 else "")
        out.append((name, rows))
    order = {m: i for i, m in enumerate(style.method_order(ok["method"]))}
    return sorted(out, key=lambda item: order[item[1]["method"].iloc[0]])


def mmlu_categories(runs: pd.DataFrame):
    """MMLU accuracy per category (x) for each model · method (bars), mean over seeds; None if none measured."""
    columns = [f"mmlu.categories.{c}" for c in MMLU_CATEGORIES]
    if not any(c in runs and runs[c].notna().any() for c in columns):
        return None
    bar = Bar(init_opts=_init()).add_xaxis([c.replace("_", " ") for c in MMLU_CATEGORIES])
    for name, rows in run_groups(runs):
        values = [None if c not in rows or rows[c].isna().all() else round(100 * float(rows[c].mean()), 2)
                  for c in columns]
        bar.add_yaxis(name, values, color=style.color(rows["method"].iloc[0]), label_opts=opts.LabelOpts(is_show=False))
    return bar.set_global_opts(
        title_opts=opts.TitleOpts(title="MMLU accuracy per category", subtitle="mmlu.categories, mean over seeds"),
        yaxis_opts=opts.AxisOpts(name="accuracy (%)"),
        tooltip_opts=opts.TooltipOpts(trigger="axis"),
        legend_opts=opts.LegendOpts(type_="scroll", pos_top="bottom"),
    )


def mmlu_subjects(runs: pd.DataFrame):
    """The per-subject table: one row per subject, one column per model · method (mean over seeds)."""
    from bench.results.report.page import cell

    columns = sorted(c for c in runs.columns if c.startswith("mmlu.subjects.") and runs[c].notna().any())
    if not columns:
        return None
    groups = run_groups(runs)
    rows = []
    for column in columns:
        values = [None if rows_[column].isna().all() else 100 * float(rows_[column].mean()) for _, rows_ in groups]
        rows.append({"failed": False, "cells": [cell(column[len("mmlu.subjects."):]),
                                                *[cell(v, fmt="{:.1f}") for v in values]]})
    return {"columns": ["subject"] + [name for name, _ in groups], "rows": rows}
