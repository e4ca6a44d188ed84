"""A run of a random-weight (shape) model never reaches an accuracy chart, a benefit chart or a verdict.

The shape runs here are copies of tests/fixtures/compare_v2's smollm2 runs renamed `shape:smollm2-135m`
and marked `weights: "random"`, keeping their MMLU, task and held-out blocks and predictions files
(one with an MMLU accuracy of 99%): everything a chart or `compare` would need to show them. The
filters are bench.results.report.load.without_benefit and bench.results.compare.runs.real_weights."""

import copy
import json

import pytest

from bench.models.random_weights import random_weights
from bench.results.compare.pairs import compare_runs
from bench.results.compare.runs import load_runs
from bench.results.report import build
from tests.compare_helpers import CATEGORIES, copy_fixture
from tests.conftest import one_clean_error_line, run_cli
from tests.report_helpers import page_options

SHAPE = "shape:smollm2-135m"
BENEFIT_CHARTS = ("chart-headline", "chart-learn-forget", "chart-mmlu-categories")


@pytest.fixture(autouse=True)
def no_svg(monkeypatch):
    import bench.results.report as report

    monkeypatch.setattr(report, "svg", lambda options, echarts_js, **_: (None, "disabled in tests"))


def shape_copies(records: list) -> list:
    out = []
    for r in records:
        if r["model"] != "smollm2-135m" or r["status"] != "ok":
            continue
        c = copy.deepcopy(r)
        c.update(model=SHAPE, run_id=r["run_id"] + "-shape", weights="random")
        out.append(c)
    out[1]["mmlu"]["acc"] = 0.99  # would stand out on any accuracy axis
    return out


def with_shapes(directory, *, keep_real: bool = True):
    results = directory / "results.jsonl"
    records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    results.write_text("".join(json.dumps(r) + "\n" for r in (records if keep_real else []) + shape_copies(records)))
    return directory


@pytest.fixture
def mixed(tmp_path):
    return with_shapes(copy_fixture("compare_v2", tmp_path / "mixed"))


@pytest.fixture
def shapes_only(tmp_path):
    return with_shapes(copy_fixture("compare_v2", tmp_path / "shapes"), keep_real=False)


def test_which_records_have_random_weights():
    assert random_weights({"model": "m", "weights": "random"})
    assert random_weights({"model": {"name": "m", "weights": "random"}})
    assert random_weights({"model": "m", "shape": {"weights": "random", "seed": 1234}})
    assert random_weights({"model": "shape:llama-3.2-1b"})
    assert not random_weights({"model": "smollm2-135m", "weights": "pretrained"})
    assert not random_weights({"model": "smollm2-135m"})


def test_report_keeps_shape_runs_off_benefit_charts(mixed, tmp_path):
    index = build(sources=[mixed], out_dir=tmp_path / "out")
    options, html = page_options(index), index.read_text()
    drawn = [cid for cid in options if cid.startswith(BENEFIT_CHARTS)]
    assert "chart-headline" in drawn and "chart-learn-forget" in drawn  # the real runs are still judged
    for cid in drawn:
        assert SHAPE not in json.dumps(options[cid]), cid
    assert SHAPE in json.dumps(options["chart-memory"])  # loaded, and shown for memory
    verdicts = html[html.index('id="verdicts"'):]
    verdicts = verdicts[:verdicts.index("</table>")]
    assert "smollm2-135m" in verdicts and SHAPE not in verdicts
    subjects = html[html.index('id="mmlu-subjects"'):]
    assert SHAPE not in subjects[:subjects.index("</table>")]
    assert "7 run(s) with random weights (a shape model)" in html
    assert "99.00" not in html  # the shape run's MMLU is not in the runs table either


def test_shape_runs_alone_draw_no_accuracy_axis(shapes_only, tmp_path):
    index = build(sources=[shapes_only], out_dir=tmp_path / "out")
    options = page_options(index)
    assert not [cid for cid in options if cid.startswith(BENEFIT_CHARTS)]
    assert "chart-memory" in options
    html = index.read_text()
    assert 'id="verdicts"' not in html and 'id="mmlu-subjects"' not in html


def test_compare_leaves_shape_runs_out(mixed):
    comparison = compare_runs(load_runs([mixed]), resamples=200, categories=CATEGORIES)
    assert comparison.rows and not [row for row in comparison.rows if row.model == SHAPE]
    assert {model for model, _ in comparison.groups} == {"smollm2-135m", "tiny-llama"}
    assert any(note.startswith(f"7 run(s) of {SHAPE} left out: random weights") for note in comparison.notes)


def test_compare_cli_with_shape_runs_only(shapes_only, mixed):
    assert "nothing to compare" in one_clean_error_line(run_cli("compare", shapes_only, "--resamples", "200"))
    result = run_cli("compare", mixed, "--resamples", "200")
    assert result.returncode == 0 and SHAPE + " (spec" not in result.stdout
    assert f"note: 7 run(s) of {SHAPE} left out: random weights" in result.stdout
