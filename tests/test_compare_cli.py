"""`run_bench.py compare` as a user runs it: exit 0 with tables or JSON, exit 2 with one clean line."""

import json

import pytest

from tests.compare_helpers import FIXTURES, copy_fixture
from tests.conftest import ROOT, one_clean_error_line, run_cli

FAST = ("--resamples", "2000")


@pytest.fixture(scope="module")
def v2(tmp_path_factory):
    return copy_fixture("compare_v2", tmp_path_factory.mktemp("cmp"))


def test_tables_verdicts_and_unmatched(v2):
    result = run_cli("compare", v2, *FAST)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    out = result.stdout
    assert out.startswith("family: 54 verdicts (6 pairs x up to 9 metrics); no row left out; Holm-adjusted p")
    assert "\nsmollm2-135m (spec 9f0c2a7e; methods base, full, lora, qlora; seeds 0, 1;" in out
    header = next(line for line in out.splitlines() if line.startswith("pair "))
    for column in ("n", "A-B", "95% interval", "p", "Holm p", "McNemar p", "disagree", "n for 1 pt", "per seed",
                   "checkpoints", "verdict"):
        assert f"  {column}  " in header + "  "
    lines = out.splitlines()
    arc = next(line for line in lines if line.startswith("full vs base   ftbench_arc_easy"))
    assert "better (<0.001)" in arc and "indistinguishable at this n, mde " in arc and "[method, 2 seeds]" in arc
    loss = next(line for line in lines if line.startswith("qlora vs base  heldout.loss"))
    assert loss.rstrip().endswith("better (lower) [these checkpoints, these questions]")
    assert any("indistinguishable at this n" in line for line in lines)
    assert "unmatched: qlora vs base (seed 1 vs 0): precision policy differs: bf16-mixed vs fp32; not compared" in lines
    assert "1 dropped" in next(line for line in lines if line.startswith("lora vs base   ftbench_arc_easy"))
    assert "note: tiny-llama (spec 9f0c2a7e): only lora; nothing to pair it with" in lines
    assert "verdict [method, k seeds]: is the method better over training noise?" in out
    assert "exploratory" in next(line for line in lines if line.startswith("full vs base   mmlu.stem"))


def test_json_rows_and_metric_filter(v2):
    result = run_cli("compare", v2, "--json", "--metric", "heldout.loss", "--metric", "mmlu,", *FAST, "--seed", "3")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {r["metric"] for r in data["rows"]} == {"heldout.loss", "mmlu"}
    assert data["settings"]["resamples"] == 2000 and data["settings"]["seed"] == 3
    row = next(r for r in data["rows"] if (r["a"], r["b"], r["metric"]) == ("full", "base", "heldout.loss"))
    assert (row["kind"] == "loss" and row["checkpoint_hi"] < 0 and row["checkpoint_verdict"] == "better"
            and row["n"] == 64)
    # two seeds that agree (-0.508, -0.501) on a clear held-out difference: the method-level test resolves it
    assert row["scope"] == "method" and row["df"] == 1 and row["verdict"] == "better"
    assert {"model", "group", "a", "b", "seeds", "reason"} <= set(data["unmatched"][0])


def test_same_seed_same_output(v2):
    first = run_cli("compare", v2, "--json", "--metric", "mmlu", *FAST).stdout
    assert run_cli("compare", v2, "--json", "--metric", "mmlu", *FAST).stdout == first


def test_v1_directories_read_without_failing(tmp_path):
    v1 = copy_fixture("compare_v1", tmp_path)
    sample = ROOT / "reports" / "samples" / "cpu-default"  # real v1 records of the default profile
    result = run_cli("compare", v1, sample, *FAST)
    assert result.returncode == 0, result.stderr
    assert "lora vs base   mmlu " in result.stdout and "qlora vs base  mmlu " in result.stdout


def _dir_with(tmp_path, records):
    folder = tmp_path / "results"
    folder.mkdir(exist_ok=True)
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def _v1_records():
    return [json.loads(line) for line in (FIXTURES / "compare_v1" / "results.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("case, message", [
    ("no results", "no results file at"),
    ("one method", "nothing to compare in"),
    ("no ok runs", "no ok runs in"),
    ("missing predictions", "predictions file"),
    ("corrupt predictions", "corrupt predictions line"),
    ("resamples 0", "--resamples must be an integer from 1 to 1,000,000 (e.g. 10000), not '0'"),
    ("resamples abc", "--resamples must be an integer from 1 to 1,000,000"),
    ("negative seed", "--seed must be an integer from 0 to"),
    ("unknown metric", "no metric 'mmlu.nope' in"),
])
def test_bad_input_one_line_exit_2(tmp_path, case, message):
    v1 = copy_fixture("compare_v1", tmp_path)
    records = _v1_records()
    args = [v1]
    if case == "no results":
        args = [tmp_path / "empty"]
        args[0].mkdir()
    elif case == "one method":
        args = [_dir_with(tmp_path, [r for r in records if r["method"] == "lora"])]
    elif case == "no ok runs":
        args = [_dir_with(tmp_path, [dict(r, status="error", error="boom") for r in records])]
    elif case == "missing predictions":
        (v1 / records[1]["mmlu"]["predictions_file"]).unlink()
    elif case == "corrupt predictions":
        with open(v1 / records[0]["mmlu"]["predictions_file"], "a") as handle:
            handle.write("{truncated\n")
    elif case == "resamples 0":
        args += ["--resamples", "0"]
    elif case == "resamples abc":
        args += ["--resamples", "abc"]
    elif case == "negative seed":
        args += ["--seed", "-1"]
    elif case == "unknown metric":
        args += ["--metric", "mmlu.nope"]
    line = one_clean_error_line(run_cli("compare", *args))
    assert message in line, line
    if case == "unknown metric":
        assert "measured per question: mmlu, mmlu.humanities" in line


def test_golden_table(v2):
    """The human table on the v2 fixture, byte for byte (regenerate with
    `python tests/fixtures/make_compare_fixtures.py --golden` after an intended change)."""
    result = run_cli("compare", v2)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (FIXTURES / "compare_golden.txt").read_text()
