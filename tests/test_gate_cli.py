"""`run_bench.py gate` end to end through bench.cli: exit codes 0, 1 and 2, one error line."""

import json

import pytest

from bench import cli
from bench.results.schema import SCHEMA_VERSION

FIXTURE = "tests/fixtures/results_synthetic.jsonl"
BASE = "tests/fixtures/gate_baseline.jsonl"
CAND = "tests/fixtures/gate_candidate.jsonl"


@pytest.fixture(autouse=True)
def gate_only(monkeypatch):
    # Only the gate is registered, so these tests don't depend on the other sub-commands.
    monkeypatch.setattr(cli, "COMMANDS", {"gate": "bench.results.gate.command"})


def gate(capsys, *args):
    code = cli.main(["gate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_same_results_pass(capsys):
    code, out, err = gate(capsys, FIXTURE, FIXTURE)
    assert code == 0 and err == ""
    assert out.splitlines()[-1].startswith("gate: PASS")


def test_regression_exits_1_and_names_it(capsys):
    code, out, _ = gate(capsys, BASE, CAND)
    assert code == 1
    assert "smollm2-135m dora deadbeef   record" in out and "not in candidate" in out
    assert out.splitlines()[-1] == "gate: FAIL (22 checks on 6 runs: 5 regression, 2 missing, 1 inconclusive)"


def test_allow_missing_and_tolerance_flags(capsys, tmp_path):
    lines = open(FIXTURE).read().splitlines()
    (tmp_path / "results.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    assert gate(capsys, FIXTURE, tmp_path)[0] == 1
    assert gate(capsys, FIXTURE, tmp_path, "--allow-missing")[0] == 0
    assert gate(capsys, FIXTURE, tmp_path, "--allow-missing", "--tolerance", "nope=1")[0] == 2


def test_directory_sources(capsys, tmp_path):
    (tmp_path / "results.jsonl").write_text(open(FIXTURE).read())
    assert gate(capsys, tmp_path, tmp_path)[0] == 0


@pytest.mark.parametrize("setup, message", [
    ("missing", "no results file at"),
    ("empty", "holds no records"),
    ("newer", f"schema_version {SCHEMA_VERSION + 1} is newer than this ftbench"),
    ("corrupt", "results.jsonl:2: corrupt line"),
    ("no_spec_hash", "missing field 'spec_hash'"),
])
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, setup, message):
    path = tmp_path / "results.jsonl"
    record = json.loads(open(FIXTURE).readline())
    if setup == "empty":
        path.write_text("")
    elif setup == "newer":
        path.write_text(json.dumps(dict(record, schema_version=SCHEMA_VERSION + 1)) + "\n")
    elif setup == "corrupt":
        path.write_text(json.dumps(record) + "\n{not json\n")
    elif setup == "no_spec_hash":
        record.pop("spec_hash")
        path.write_text(json.dumps(record) + "\n")
    code, out, err = gate(capsys, path, FIXTURE)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("ftbench: error: ") and message in err
    assert "Traceback" not in err


def test_write_baseline_keeps_env_and_reads_back(capsys, tmp_path):
    dest = tmp_path / "baselines" / "smoke.jsonl"
    code, out, _ = gate(capsys, CAND, dest, "--write-baseline")
    assert code == 0 and out.startswith(f"wrote baseline {dest}: 8 records, git 00000000")
    written = [json.loads(line) for line in dest.read_text().splitlines()]
    assert len(written) == 8 and all(r["env"]["calibration"]["matmul_gflops"] for r in written)
    assert gate(capsys, CAND, dest)[0] == 0  # a baseline gates its own results as a pass


def test_write_baseline_refuses_records_without_env(capsys, tmp_path):
    record = json.loads(open(FIXTURE).readline())
    (tmp_path / "results.jsonl").write_text(json.dumps(dict(record, env={})) + "\n")
    code, _, err = gate(capsys, tmp_path, tmp_path / "b.jsonl", "--write-baseline")
    assert code == 2 and "has no env" in err and not (tmp_path / "b.jsonl").exists()
