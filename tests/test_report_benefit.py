"""The benefit axis in the report: a headline per measured metric, base as the reference, seeds as
mean and interval, the learns-versus-forgets chart and the paired verdicts, from rows in the shapes
bench.results.compare returns (tests/fixtures/make_v2_fixtures.py; no statistics are computed here)."""

import pytest

from bench.results.report import benefit, build
from tests.fixtures import make_v2_fixtures as fx
from tests.report_helpers import FIXTURE, page_options

V2 = "tests/fixtures/results_v2.jsonl"


@pytest.fixture(autouse=True)
def no_svg(monkeypatch):
    import bench.results.report as report

    monkeypatch.setattr(report, "svg", lambda options, echarts_js: (None, "disabled in tests"))


@pytest.fixture
def with_statistics(monkeypatch):
    """benefit.paired as bench.results.compare would fill it, from the fixture rows."""
    paired = benefit.Paired(summaries=fx.seed_summaries(), learn_forget=fx.learn_forget_rows(), rows=fx.pair_rows())
    monkeypatch.setattr(benefit, "paired", lambda sources: paired)


def series(options, chart, name):
    return [s for s in options[chart]["series"] if s["name"] == name]


def test_one_headline_per_measured_metric(tmp_path):
    assert {k for k in page_options(build(sources=[FIXTURE], out_dir=tmp_path / "v1"))
            if "headline" in k} == {"chart-headline"}
    options = page_options(build(sources=[V2], out_dir=tmp_path / "v2"))
    assert [k for k in options if "headline" in k] == ["chart-headline", "chart-headline-target",
                                                       "chart-headline-heldout"]
    assert options["chart-headline-target"]["yAxis"][0]["name"] == "arc_easy accuracy (%)"
    assert options["chart-headline-heldout"]["yAxis"][0]["name"] == "held-out loss (lower is better)"


def test_seeds_are_one_point_with_the_summary_interval(tmp_path, with_statistics):
    options = page_options(build(sources=[V2], out_dir=tmp_path))
    (full,) = [p for s in series(options, "chart-headline-target", "full") if s["type"] == "scatter" for p in s["data"]]
    assert full["seeds"] == 3 and len(full["run_ids"]) == 3
    # FIGURES: full ARC 0.55, mean over seeds
    assert full["value"] == [pytest.approx(2.9e9 / 2**30), pytest.approx(55.0)]
    bars = next(s for s in series(options, "chart-headline-target", "full") if s["type"] == "line")["data"]
    assert bars[:2] == [[pytest.approx(2.9e9 / 2**30), pytest.approx(53.0)],
                        [pytest.approx(2.9e9 / 2**30), pytest.approx(57.0)]]
    assert "mean of 3 seeds, 95% interval 53.0 to 57.0" in full["tooltip"]["formatter"]


def test_base_is_a_reference_line_not_on_the_pareto_front(tmp_path, with_statistics):
    options = page_options(build(sources=[V2], out_dir=tmp_path))
    for chart, base_y in (("chart-headline", 30.0), ("chart-headline-target", 40.0),
                          ("chart-headline-heldout", 2.0813)):
        (base,) = [s for s in series(options, chart, "base") if s["type"] == "scatter"]
        assert base["data"][0]["symbol"] == "diamond"
        assert base["markLine"]["data"] == [{"yAxis": pytest.approx(base_y)}]
        front = series(options, chart, "Pareto front")[0]["data"]
        assert [0.9e9 / 2**30, pytest.approx(base_y)] not in front and front  # base (0.9 GB) is never on the front
    # held-out loss: lower is better, so the front runs qlora (1.0 GB) -> lora (1.3) -> full (2.9)
    front = series(options, "chart-headline-heldout", "Pareto front")[0]["data"]
    # in GiB and [y for _, y in front] == sorted(y for _, y in front)[::-1]
    assert [round(x, 1) for x, _ in front] == [0.9, 1.2, 2.7]


def test_learns_versus_forgets_chart(tmp_path, with_statistics):
    options = page_options(build(sources=[V2], out_dir=tmp_path))["chart-learn-forget"]
    points = {s["name"]: s["data"][0] for s in options["series"] if s["type"] == "scatter"}
    assert points["full"]["value"] == [pytest.approx(15.0), pytest.approx(-3.0)]   # ARC +15 pt, MMLU -3 pt
    assert points["lora"]["value"] == [pytest.approx(8.0), pytest.approx(-0.5)]
    assert "base" not in points
    bars = next(s for s in options["series"] if s["type"] == "line" and s["name"] == "full")["data"]
    assert bars[:2] == [[pytest.approx(11.0), pytest.approx(-3.0)], [pytest.approx(19.0), pytest.approx(-3.0)]]
    assert "worse" in points["full"]["tooltip"]["formatter"]


def test_paired_verdicts_table(tmp_path, with_statistics):
    html = build(sources=[V2], out_dir=tmp_path).read_text()
    assert "<h2>Paired verdicts</h2>" in html
    assert '<td class=" v-better" data-v="better">better</td>' in html
    assert ">+15.0<" in html and ">+11.0 to +19.0<" in html and ">310<" in html       # accuracy in points
    assert ">-0.350<" in html and ">-0.400 to -0.300<" in html                        # loss as is
    assert 'v-indistinguishable" data-v="indistinguishable at this n"' in html


def test_without_bench_compare_the_page_says_so_and_draws_each_seed(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "bench.results.compare", None)
    index = build(sources=[V2], out_dir=tmp_path)
    html = index.read_text()
    assert "paired statistics skipped: bench.results.compare cannot be imported" in html
    points = [p for s in page_options(index)["chart-headline"]["series"] if s["type"] == "scatter" for p in s["data"]]
    assert len(points) == 10 and "chart-learn-forget" not in page_options(index)


def test_learns_versus_forgets_uses_the_forgetting_suite_when_measured():
    from bench.results.report.benefit import learn_forget_chart

    figure = {"diff": 0.1, "lo": 0.05, "hi": 0.15, "n": 40, "verdict": "better"}
    rows = [{"model": "m", "method": "full", "source": "s", "seeds": [0], "target_task": "t",
             "target_gain": figure, "mmlu_change": dict(figure, diff=-0.03, lo=-0.05, hi=-0.01),
             "suite_change": dict(figure, diff=-0.08, lo=-0.12, hi=-0.04, verdict="worse")}]
    chart = learn_forget_chart(rows)
    point = next(s for s in chart.options["series"] if s["type"] == "scatter")["data"][0]
    assert point["value"] == [pytest.approx(10.0), pytest.approx(-8.0)]          # the suite, not MMLU's -3
    assert "forgetting-suite change vs base" in point["tooltip"]["formatter"]
    assert chart.options["yAxis"][0]["name"] == "forgetting-suite change vs base (points)"
    del rows[0]["suite_change"]
    point = next(s for s in learn_forget_chart(rows).options["series"] if s["type"] == "scatter")["data"][0]
    assert point["value"][1] == pytest.approx(-3.0)  # no suite measured: MMLU's change


def test_learns_versus_forgets_tells_models_apart():
    from bench.results.report.benefit import learn_forget_chart

    figure = {"diff": 0.1, "lo": 0.05, "hi": 0.15, "n": 40, "verdict": "better"}
    rows = [{"model": model, "method": method, "source": "s", "seeds": [0], "target_task": "t",
             "target_gain": figure, "mmlu_change": dict(figure, diff=-0.03, lo=-0.05, hi=-0.01)}
            for model in ("gpt2", "phi3") for method in ("full", "lora")]
    import json

    dumped = json.loads(learn_forget_chart(rows).dump_options())
    scatter = {s["name"]: s for s in dumped["series"] if s["type"] == "scatter"}
    assert set(scatter) == {"gpt2 · full", "gpt2 · lora", "phi3 · full", "phi3 · lora"}
    assert scatter["gpt2 · full"]["itemStyle"]["color"] != scatter["phi3 · full"]["itemStyle"]["color"]
    assert scatter["gpt2 · full"]["data"][0]["symbol"] != scatter["gpt2 · lora"]["data"][0]["symbol"]
    assert scatter["phi3 · lora"]["data"][0]["name"] == "phi3 · lora"
    one = learn_forget_chart([r for r in rows if r["model"] == "gpt2"])  # one model: as before
    assert {s["name"] for s in one.options["series"] if s["type"] == "scatter"} == {"full", "lora"}
