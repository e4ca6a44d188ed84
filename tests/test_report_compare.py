"""The compare page: runs matched as the gate matches them, changes per figure, the gate's verdicts shown."""

import re
import subprocess
import sys

import pytest

from bench.results import store
from bench.results.gate import DEFAULT_TOLERANCES
from bench.results.gate.verdicts import compare
from bench.results.report.compare_page import build_compare, rows
from tests.fixtures.make_gate_fixtures import with_
from tests.report_helpers import write_results

BASE, CAND = "tests/fixtures/gate_baseline.jsonl", "tests/fixtures/gate_candidate.jsonl"
V1, V2 = "tests/fixtures/results_synthetic.jsonl", "tests/fixtures/results_v2.jsonl"


def table_of(baseline, candidate):
    table, _ = rows(store.read(baseline)[0], store.read(candidate)[0], tolerances=DEFAULT_TOLERANCES)
    return {(r["cells"][1]["text"], r["cells"][2]["text"]): dict(zip(table["columns"], r["cells"]))
            for r in table["rows"]}


def test_each_run_shows_the_gates_worst_verdict_and_the_changes():
    table = table_of(BASE, CAND)
    gate = {}
    for row in compare(store.read(BASE)[0], store.read(CAND)[0], tolerances=DEFAULT_TOLERANCES):
        gate.setdefault(tuple(row.run.split()[1:]), set()).add(row.verdict)
    assert {k: v["gate verdict"]["key"] for k, v in table.items()} == {
        ("base", "abcd0000"): "regression", ("full", "abcd0001"): "regression", ("lora", "abcd0002"): "regression",
        ("qlora", "abcd0003"): "regression", ("dora", "deadbeef"): "missing", ("lora8", "abcd0005"): "missing"}
    assert all(table[k]["gate verdict"]["key"] in gate[k] for k in table)  # shown, not decided here
    lora = table[("lora", "abcd0002")]
    assert (lora["train peak GiB"]["text"] == "1.211 → 1.574 (+30.0%)"
            and lora["train peak GiB"]["cls"] == "delta v-regression")
    assert lora["tokens/s"]["cls"] == "delta v-inconclusive" and lora["load peak GiB"]["cls"] == "delta"  # not gated
    assert lora["gate verdict"]["text"] == "regression: memory.train.peak_bytes"
    assert table[("base", "abcd0000")]["MMLU %"]["text"] == "30.0 → 20.0 (-10.0 pt)"
    assert table[("full", "abcd0001")]["tokens/s"]["key"] == pytest.approx(-50.0)
    assert table[("lora8", "abcd0005")]["train peak GiB"]["text"] == "- → 0.931"


def test_v2_figures_tasks_and_held_out_loss(tmp_path):
    records = store.read(V2)[0]
    changed = [with_(r, **{"heldout.loss": r["heldout"]["loss"] + 0.1,
                           "tasks.ftbench_arc_easy.acc": r["tasks"]["ftbench_arc_easy"]["acc"] - 0.05})
               if r["heldout"] else r for r in records]
    table = table_of(V2, write_results(tmp_path / "c", changed))
    full = table[("full", "abcd0001")]  # one of its three seeds (they share the first 8 hex of spec_hash)
    assert "arc_easy %" in full and "held-out loss" in full
    assert full["arc_easy %"]["text"].endswith("(-5.0 pt)") and full["held-out loss"]["text"].endswith("(+0.100)")


def test_old_records_compare_with_new_ones(tmp_path):
    """A v1 baseline against a v2 candidate of the same work: the v2-only figures read '- -> x'."""
    v1 = store.read(V1)[0]
    v2 = [with_(r, heldout={"loss": 1.5, "n": 8, "tokens": 40, "losses": [1.5] * 8, "ids": list(map(str, range(8)))})
          for r in v1]
    table = table_of(V1, write_results(tmp_path / "c", v2))
    assert table[("lora", "abcd0002")]["held-out loss"]["text"] == "- → 1.500"
    assert table[("lora", "abcd0002")]["gate verdict"]["key"] == "pass"


def test_page_is_written_whole_and_names_both_sides(tmp_path):
    index = build_compare(baseline=BASE, candidate=CAND, out_dir=tmp_path, labels=["last week", "today"])
    html = index.read_text()
    assert index.name == "compare.html" and "gate: FAIL (22 checks on 6 runs" in html
    assert "<b>last week</b>" in html and "<b>today</b>" in html
    assert len(re.findall(r'class="[^"]*v-regression', html)) >= 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare.html"]


def ftbench(*args):
    return subprocess.run([sys.executable, "run_bench.py", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_cli_writes_beside_the_candidate_and_refuses_runs_in_common_with_nothing(tmp_path):
    cand = write_results(tmp_path / "cand", store.read(CAND)[0])
    done = ftbench("report", BASE, cand, "--compare")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("compare.html")
    assert "gate: FAIL (22 checks on 6 runs" in (cand / "compare.html").read_text()  # the same page build_compare makes
    other = write_results(tmp_path / "other", [with_(r, spec_hash="0" * 16) for r in store.read(V1)[0]])
    done = ftbench("report", BASE, other, "--compare", "--out", tmp_path / "out")
    assert done.returncode == 2 and done.stdout == ""
    assert (done.stderr.count("\n") == 1
            and done.stderr.startswith("ftbench: error: baseline and candidate share no runs"))
    assert not (tmp_path / "out" / "compare.html").exists()
    done = ftbench("report", BASE, "--compare")
    assert done.returncode == 2 and "exactly two sources" in done.stderr


def test_a_run_that_ran_differently_is_named_not_scored():
    base, cand = store.read(BASE)[0], store.read(CAND)[0]
    cand = [with_(r, **{"precision.policy": "bf16-true"}) if r["method"] == "full" else r for r in cand]
    base = [with_(r, **{"precision.policy": "fp32"}) if r["method"] == "full" else r for r in base]
    table, _ = rows(base, cand, tolerances=DEFAULT_TOLERANCES)
    full = next(dict(zip(table["columns"], r["cells"])) for r in table["rows"] if r["cells"][1]["text"] == "full")
    assert full["gate verdict"]["text"] == "inconclusive: pairing"
    assert "precision policy differs: fp32 vs bf16-true; not scored" in full["gate verdict"]["title"]
    assert full["train peak GiB"]["cls"] == "delta"  # shown, not coloured by a verdict
