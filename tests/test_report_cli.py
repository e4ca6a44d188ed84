"""`run_bench.py report`: exit codes, default output directory, the static SVG."""

import shutil
import subprocess
import sys

import pytest

from tests.report_helpers import FIXTURE, XSS_MODEL, fixture_records, page_options, write_results

# Only the report sub-command: the CLI skeleton also imports the other sub-commands' modules,
# which live on other branches.
RUNNER = (
    "import sys; from bench import cli; cli.COMMANDS = {'report': 'bench.results.report.command'}; "
    "sys.exit(cli.main(sys.argv[1:]))"
)


def ftbench(*args, cwd=None):
    import os
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path.cwd()))
    return subprocess.run([sys.executable, "-c", RUNNER, *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def test_report_writes_beside_the_results_by_default(tmp_path):
    source = write_results(tmp_path / "run1", fixture_records())
    done = ftbench("report", source, "--no-image")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str((source / "index.html").resolve())
    assert headline_runs(source / "index.html") == {r["run_id"] for r in fixture_records() if r["status"] == "ok"}
    assert not (source / "headline.svg").exists()


def test_several_sources_go_to_reports_latest(tmp_path):
    a = write_results(tmp_path / "a", fixture_records())
    b = write_results(tmp_path / "b", fixture_records())
    done = ftbench("report", a, b, "--label", "A", "--label", "B", "--no-image", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    index = tmp_path / "reports" / "latest" / "index.html"
    assert done.stdout.strip() == "reports/latest/index.html"
    assert "[A]" in headline_labels(index) and "[B]" in headline_labels(index)
    assert headline_runs(index) == {r["run_id"] for r in fixture_records() if r["status"] == "ok"}


def headline_points(index) -> list:
    return [point for series in page_options(index)["chart-headline"]["series"] if series["type"] == "scatter"
            for point in series["data"]]


def headline_runs(index) -> set:
    return {run for point in headline_points(index) for run in point["run_ids"]}


def headline_labels(index) -> str:
    """Every headline tooltip: each names its run's source label in brackets."""
    return " ".join(point["tooltip"]["formatter"] for point in headline_points(index))


def test_the_smoke_runs_page_plots_each_run_where_its_record_says(smoke_run):
    """The page the session's real smoke run wrote (conftest): each ok run is one headline point
    at its own record's train peak (GiB) and MMLU accuracy (%)."""
    points = {p["run_id"]: p["value"] for p in headline_points(smoke_run.out / "index.html")}
    assert points.keys() == {r["run_id"] for r in smoke_run.records.values()}
    for record in smoke_run.records.values():
        x, y = points[record["run_id"]]
        assert x == pytest.approx(record["memory"]["train"]["peak_bytes"] / 2**30, rel=1e-6)
        assert y == pytest.approx(100 * record["mmlu"]["acc"], rel=1e-6)


@pytest.mark.parametrize("args, message", [
    (["missing-dir"], "no results file at missing-dir"),
    (["FIXTURE", "--label", "a", "--label", "b"], "got 2 labels for 1 sources"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
    args = [str(FIXTURE.resolve()) if a == "FIXTURE" else a for a in args]
    done = ftbench("report", *args, "--out", tmp_path, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ftbench: error: {message}")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the SVG is skipped by design")
def test_static_svg_of_the_headline(tmp_path):
    records = fixture_records()
    records[1]["model"] = XSS_MODEL
    source = write_results(tmp_path / "x", records)
    done = ftbench("report", source)
    assert done.returncode == 0, done.stderr
    svg = (source / "headline.svg").read_text()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "MMLU accuracy vs train-phase peak memory" in svg and "train-phase peak RAM (GiB)" in svg
    assert svg.count("<path") > 10  # axes, bubbles, error bars drawn
    assert "<script" not in svg and 'href="headline.svg"' in (source / "index.html").read_text()
