"""The report: headline points equal the records, escaping, offline page, tables, bad input."""

import json
import math
import re

import pytest

from bench.results.report import build, headline
from bench.util.errors import BenchError
from tests.report_helpers import FIXTURE, XSS_MODEL, fixture_records, page_options, varied, write_results


@pytest.fixture(autouse=True)
def no_svg(monkeypatch):
    """Most tests need no SVG; the one that does asks for it (node costs ~0.3 s per build)."""
    import bench.results.report as report

    monkeypatch.setattr(report, "svg", lambda options, echarts_js: (None, "disabled in tests"))


def expected_size(trainable, lo, hi):
    """The documented rule: area linear in log10(trainable) from D_MIN^2 to D_MAX^2; 0 -> BASE_SIZE."""
    if trainable == 0:
        return headline.BASE_SIZE
    share = (math.log10(trainable) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    return math.sqrt(headline.D_MIN**2 + share * (headline.D_MAX**2 - headline.D_MIN**2))


def scatter_points(options):
    return {point["run_id"]: (point, series["name"])
            for series in options["chart-headline"]["series"] if series["type"] == "scatter"
            for point in series["data"]}


@pytest.mark.parametrize("n", [5, 60])
def test_headline_points_equal_the_records(tmp_path, n):
    records = fixture_records() if n == 5 else varied(n)
    index = build(sources=[write_results(tmp_path / "r", records)], out_dir=tmp_path / "out")
    plotted = scatter_points(page_options(index))
    ok = [r for r in records if r["status"] == "ok" and r["mmlu"]]
    trainables = [r["params"]["trainable"] for r in ok if r["params"]["trainable"] > 0]
    assert len(plotted) == len(ok)
    for record in ok:
        point, series = plotted[record["run_id"]]
        assert point["value"][0] == pytest.approx(record["memory"]["train"]["peak_bytes"] / 2**30)
        several = len({r["model"] for r in ok}) > 1  # then each series is one model's method
        assert series == (f"{record['model']} · {record['method']}" if several else record["method"])
        assert point["value"][1] == pytest.approx(record["mmlu"]["acc"] * 100)
        size = expected_size(record["params"]["trainable"], min(trainables), max(trainables))
        assert point["symbolSize"] == pytest.approx(size, abs=0.01)


def test_base_gets_the_minimal_size_and_says_so(tmp_path):
    index = build(sources=[FIXTURE], out_dir=tmp_path)
    plotted = scatter_points(page_options(index))
    base, _ = plotted["20261128T220000-smollm2-135m-base-abcd0000"]
    assert base["symbolSize"] == headline.BASE_SIZE < headline.D_MIN
    assert "minimal bubble size" in base["tooltip"]["formatter"]
    # full: most trainable
    assert plotted["20261128T220000-smollm2-135m-full-abcd0001"][0]["symbolSize"] == pytest.approx(headline.D_MAX)


def test_tooltip_error_bars_and_pareto_front(tmp_path):
    options = page_options(build(sources=[FIXTURE], out_dir=tmp_path))["chart-headline"]
    lora = next(p for p, s in scatter_points({"chart-headline": options}).values() if s == "lora")
    for figure in ("31.0%", "± 4.3", "1.211 GiB", "4.88M", "520.0 tokens/s", "3.63%", "smollm2-135m"):
        assert figure in lora["tooltip"]["formatter"]
    bars = next(s for s in options["series"] if s["type"] == "line" and s["name"] == "lora")
    lora_x = pytest.approx(1.3e9 / 2**30)  # GiB
    assert bars["data"][:2] == [[lora_x, pytest.approx(26.7)], [lora_x, pytest.approx(35.3)]]
    front = next(s for s in options["series"] if s["name"] == "Pareto front")
    # qlora and lora; full is dominated; base is the reference
    assert front["data"] == [[pytest.approx(1e9 / 2**30, abs=1e-6), 29.0],
                             [pytest.approx(1.3e9 / 2**30, abs=1e-6), 31.0]]


def test_axis_names_the_device(tmp_path):
    cpu = page_options(build(sources=[FIXTURE], out_dir=tmp_path / "cpu"))
    assert "peak RAM" in cpu["chart-headline"]["xAxis"][0]["name"]
    records = fixture_records()
    for record in records:
        record["memory"]["device"] = "cuda"
    gpu = page_options(build(sources=[write_results(tmp_path / "g", records)], out_dir=tmp_path / "gpu"))
    assert "GPU memory" in gpu["chart-headline"]["xAxis"][0]["name"]


def test_page_is_offline(tmp_path):
    html = build(sources=[FIXTURE], out_dir=tmp_path).read_text()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "assets.pyecharts.org" not in html and "cdn" not in html.lower().replace("cdn-", "")
    assert "echarts.init" in html and len(html) > 1_000_000  # the library is inlined


def test_record_text_cannot_inject_markup(tmp_path):
    records = fixture_records()
    for record in records:
        record["model"] = XSS_MODEL
    html = build(sources=[write_results(tmp_path / "x", records)], out_dir=tmp_path).read_text()
    assert "<script>alert(1)" not in html and "<script>window.ftbenchErrors.push" not in html
    assert "out of memory: &lt;script&gt;alert(1)&lt;/script&gt;" in html  # the oom row's error
    assert html.count("</script>") == html.count("<script")  # no record closes or opens a script
    blob = re.search(r'id="ftbench-options">(.*?)</script>', html, re.S).group(1)
    assert "<" not in blob and "\\u003c/script\\u003e" in blob
    tips = [p["tooltip"]["formatter"] for s in json.loads(blob)["chart-headline"]["series"]
            if s["type"] == "scatter" for p in s["data"]]
    assert tips and all("&lt;/script&gt;" in tip and "</script>" not in tip for tip in tips)


def test_failed_runs_are_in_the_table_with_status_and_error(tmp_path):
    html = build(sources=[FIXTURE], out_dir=tmp_path).read_text()
    row = re.search(r'<tr class="failed">(.*?)</tr>', html, re.S).group(1)
    assert "oom" in row and "out of memory" in row and "dora" in row
    assert html.count('<tr class="failed">') == 1


def test_estimates_show_predicted_and_error(tmp_path):
    html = build(sources=[FIXTURE], out_dir=tmp_path / "a").read_text()
    assert "predicted train peak GiB" not in html
    records = fixture_records()
    records[2]["estimate"] = {"total_bytes": 1_430_000_000, "terms": {}, "error_pct": None}  # lora, 1.3 GB measured
    html = build(sources=[write_results(tmp_path / "e", records)], out_dir=tmp_path / "b").read_text()
    assert "predicted train peak GiB" in html and ">1.332<" in html and ">+10.0<" in html


def test_sources_are_labelled_and_environments_shown(tmp_path):
    a = write_results(tmp_path / "a" / "run", fixture_records())
    b_records = fixture_records()
    for record in b_records:
        record["env"]["cpu_model"] = "Other CPU"
    b = write_results(tmp_path / "b" / "run", b_records)
    index = build(sources=[a, b], out_dir=tmp_path / "out")
    html = index.read_text()
    assert "a/run" in html and "b/run" in html and "Other CPU" in html  # default labels made unique
    index = build(sources=[a, b], out_dir=tmp_path / "out", labels=["laptop", "server"])
    names = {p["name"] for p, _ in scatter_points(page_options(index)).values()}
    assert "lora [server]" in names or "lora [laptop]" in names
    with pytest.raises(BenchError, match="one label per source"):
        build(sources=[a, b], out_dir=tmp_path / "out", labels=["only-one"])


def test_bad_input_is_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="no results file"):
        build(sources=[tmp_path / "empty"], out_dir=tmp_path / "o")
    lines = FIXTURE.read_text().splitlines()
    lines.insert(1, "{not json")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchError, match=r"results.jsonl:2: corrupt line.*--skip-bad-lines"):
        build(sources=[bad], out_dir=tmp_path / "o")
    assert not (tmp_path / "o" / "index.html").exists()
    html = build(sources=[bad], out_dir=tmp_path / "o", skip_bad_lines=True).read_text()
    assert "1 line(s) skipped" in html and "results.jsonl:2: corrupt line" in html
    assert "5 runs" in html


def test_missing_echarts_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path / "nocache"))
    with pytest.raises(BenchError, match="scripts/setup.sh"):
        build(sources=[FIXTURE], out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_rebuild_replaces_the_page_whole(tmp_path):
    first = build(sources=[FIXTURE], out_dir=tmp_path)
    first_text = first.read_text()
    records = fixture_records()[:2]
    second = build(sources=[write_results(tmp_path / "two", records)], out_dir=tmp_path)
    assert second == first and "2 runs" in second.read_text() and second.read_text() != first_text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html", "two"]  # no temp files left


def test_two_models_are_told_apart_with_one_front_each(tmp_path):
    from tests.report_helpers import two_models

    index = build(sources=[write_results(tmp_path / "r", two_models())], out_dir=tmp_path / "out", image_svg=False)
    options = page_options(index)["chart-headline"]
    scatter = {s["name"]: s for s in options["series"] if s["type"] == "scatter"}
    assert {"smollm2-135m · lora", "phi3-mini · lora", "smollm2-135m · base", "phi3-mini · base"} <= set(scatter)
    assert {"smollm2-135m · lora", "phi3-mini · lora"} <= set(options["legend"][0]["data"])
    # colour by model, marker by method
    assert scatter["smollm2-135m · lora"]["itemStyle"]["color"] == scatter["smollm2-135m · full"]["itemStyle"]["color"]
    assert scatter["smollm2-135m · lora"]["itemStyle"]["color"] != scatter["phi3-mini · lora"]["itemStyle"]["color"]
    assert ({p["symbol"] for p in scatter["phi3-mini · lora"]["data"]}
            != {p["symbol"] for p in scatter["phi3-mini · full"]["data"]})
    assert [p["name"] for p in scatter["phi3-mini · qlora"]["data"]] == ["phi3-mini · qlora"]
    # a Pareto front per model, each through its own model's points only
    fronts = {s["name"]: s["data"] for s in options["series"] if s["name"].startswith("Pareto front")}
    assert set(fronts) == {"Pareto front · smollm2-135m", "Pareto front · phi3-mini"}
    for model, front in fronts.items():
        own = {tuple(p["value"]) for name, s in scatter.items() if name.startswith(model.split(" · ")[1])
               for p in s["data"]}
        assert front and {tuple(p) for p in front} <= own


def test_a_labelled_frame_of_real_records_raises_no_fragmentation_warning():
    """json_normalize leaves one block per column; inserting the source column into ~300 of them made
    pandas print a PerformanceWarning at the end of every run (the smoke baseline's records do)."""
    import warnings
    from pathlib import Path

    import pandas as pd

    from bench.results.report.load import frame

    path = Path(__file__).resolve().parents[1] / "profiles" / "baselines" / "smoke.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.PerformanceWarning)
        wide = frame(records, source="baseline")
    assert list(wide.columns)[0] == "source" and set(wide["source"]) == {"baseline"}
