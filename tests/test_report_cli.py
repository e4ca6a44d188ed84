"""`run_bench.py report`: exit codes, default output directory, the static SVG."""

import shutil
import subprocess
import sys

import pytest

from tests.report_helpers import FIXTURE, XSS_MODEL, fixture_records, write_results

# Only the report sub-command: the CLI skeleton also imports the other sub-commands' modules,
# which live on other branches.
RUNNER = (
    "import sys; from bench import cli; cli.COMMANDS = {'report': 'bench.report.command'}; "
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
    assert (source / "index.html").is_file() and done.stdout.strip().endswith("index.html")
    assert not (source / "headline.svg").exists()


def test_several_sources_go_to_reports_latest(tmp_path):
    a = write_results(tmp_path / "a", fixture_records())
    b = write_results(tmp_path / "b", fixture_records())
    done = ftbench("report", a, b, "--label", "A", "--label", "B", "--no-image", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "reports" / "latest" / "index.html").is_file()


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
    assert "MMLU accuracy vs train-phase peak memory" in svg and "train-phase peak RAM (GB)" in svg
    assert svg.count("<path") > 10  # axes, bubbles, error bars drawn
    assert "<script" not in svg and 'href="headline.svg"' in (source / "index.html").read_text()
