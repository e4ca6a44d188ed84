"""The breakdown and MFU charts build from records, and plot exactly what the records hold.

Fixture: tests/fixtures/breakdown_records.jsonl, a real tiny-llama smoke run (full, lora, qlora,
--no-eval, 3 steps) plus its base record, made with this code on CPU.
"""

import copy
import json
from pathlib import Path

from bench.results.report import breakdown_chart
from bench.results.schema import upgrade

FIXTURE = Path("tests/fixtures/breakdown_records.jsonl")


def records() -> list:
    return [upgrade(json.loads(line)) for line in FIXTURE.read_text().splitlines() if line.strip()]


def options(chart) -> dict:
    return json.loads(chart.dump_options())


def test_breakdown_plots_every_measured_category_beside_every_predicted_term():
    recs = records()
    trained = [r for r in recs if r["method"] != "base"]
    got = options(breakdown_chart.breakdown(recs))
    assert got["xAxis"][0]["data"] == [f"{r['model']} · {r['method']}" for r in trained]
    series = {s["name"]: s for s in got["series"]}
    for i, r in enumerate(trained):
        b = r["memory"]["breakdown"]
        for name, nbytes in {**b["categories"], "unattributed": b["unattributed_bytes"]}.items():
            assert series[f"measured: {name}"]["data"][i] == round(nbytes / 2**30, 4)
            assert series[f"measured: {name}"]["stack"] == "measured"
        for name, nbytes in r["estimate"]["terms"].items():
            assert series[f"predicted: {name}"]["data"][i] == round(nbytes / 2**30, 4)
            assert series[f"predicted: {name}"]["stack"] == "predicted"
    # the unattributed segment is drawn last (on top), so it is never covered
    measured = [s["name"] for s in got["series"] if s["stack"] == "measured"]
    assert measured[-1] == "measured: unattributed"


def test_the_same_kind_of_memory_has_one_colour_in_both_stacks():
    got = options(breakdown_chart.breakdown(records()))
    colour = {s["name"]: s["itemStyle"]["color"] for s in got["series"]}
    assert colour["measured: optimizer_state"] == colour["predicted: optimizer_states"]
    assert colour["measured: process_baseline"] == colour["predicted: baseline"]
    assert colour["measured: adapters"] == colour["predicted: adapters"]


def test_runs_without_a_breakdown_are_left_out_not_drawn_as_zero():
    recs = records()
    broken = copy.deepcopy([r for r in recs if r["method"] == "lora"][0])
    broken["memory"]["breakdown"] = {"error": "profiled step failed: MemoryError"}
    failed = copy.deepcopy(broken)
    failed.update(status="oom", error="MemoryError")
    got = options(breakdown_chart.breakdown(recs + [broken, failed]))
    assert len(got["xAxis"][0]["data"]) == len([r for r in recs if r["method"] != "base"])


def test_mfu_bars_are_the_records_mfu_in_percent():
    recs = records()
    trained = [r for r in recs if r["method"] != "base"]
    got = options(breakdown_chart.mfu(recs))
    (series,) = got["series"]
    assert [p["value"] for p in series["data"]] == [round(100 * r["throughput"]["mfu"], 2) for r in trained]
    assert all(0 < p["value"] <= 100 for p in series["data"])


def test_names_from_records_are_escaped():
    recs = records()
    odd = copy.deepcopy([r for r in recs if r["method"] == "qlora"][0])
    odd["memory"]["breakdown"]["categories"]["<b>{a}</b>"] = 1
    names = [s["name"] for s in options(breakdown_chart.breakdown([odd]))["series"]]
    assert "measured: &lt;b&gt;&#123;a&#125;&lt;/b&gt;" in names and not any("<b>" in n for n in names)
