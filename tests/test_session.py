"""The end of a matrix: the summary table marks missing figures, and a report that cannot be built says so."""

import sys

from bench.results import store
from bench.run import session

V2 = "tests/fixtures/results_v2.jsonl"


def test_summary_prints_a_dash_not_none_where_a_figure_is_missing():
    records, _ = store.read("tests/fixtures/results_synthetic.jsonl")  # base has no throughput, dora is oom
    text = session.summary(records)
    assert "None" not in text and "nan" not in text.lower()
    dora = next(line for line in text.splitlines() if " dora " in line)
    assert dora.split()[3:] == ["–", "–", "–", "–", "–", "60.0"]
    base = next(line for line in text.splitlines() if " base " in line)
    assert base.split()[6] == "–" and base.split()[7] == "30.0"  # no tokens/s, MMLU measured


def test_summary_shows_held_out_loss_when_measured():
    records, _ = store.read(V2)
    header, *rows = session.summary(records).splitlines()
    assert "held-out loss" in header and rows[0].split()[-2] == "2.081"


def test_report_import_failure_is_said_not_swallowed(tmp_path, monkeypatch, capsys):
    # `from bench.results.report import build` -> ImportError
    monkeypatch.setitem(sys.modules, "bench.results.report", None)
    session._write_report(tmp_path)
    out = capsys.readouterr().out
    assert out.startswith("report: skipped: the report cannot be imported")
    assert f"run_bench.py report {tmp_path}" in out
