"""Golden table: the gate's exact output over committed fixtures.

tests/fixtures/make_gate_fixtures.py builds the two files and says what each change is;
gate_golden.txt was checked by hand. If a change to the gate alters it on purpose, rerun
the gate and review the diff before committing the new text.
"""

from pathlib import Path

from bench.results import store
from bench.results.gate import DEFAULT_TOLERANCES
from bench.results.gate.command import render_rows
from bench.results.gate.verdicts import summary
from bench.results.gate.verdicts import compare, exit_code

FIXTURES = Path("tests/fixtures")


def test_golden_table():
    baseline, _ = store.read(FIXTURES / "gate_baseline.jsonl")
    candidate, _ = store.read(FIXTURES / "gate_candidate.jsonl")
    rows = compare(baseline, candidate, tolerances=DEFAULT_TOLERANCES)
    code = exit_code(rows)
    text = render_rows(rows) + "\n" + summary(rows, exit_code=code) + "\n"
    assert text == (FIXTURES / "gate_golden.txt").read_text()
    assert code == 1


def test_golden_verdicts_by_run():
    baseline, _ = store.read(FIXTURES / "gate_baseline.jsonl")
    candidate, _ = store.read(FIXTURES / "gate_candidate.jsonl")
    failing = {(r.run, r.metric, r.verdict) for r in compare(baseline, candidate, tolerances=DEFAULT_TOLERANCES)
               if r.verdict != "pass"}
    assert failing == {
        ("smollm2-135m base abcd0000", "mmlu.acc", "regression"),
        # its own record says half-speed machine, but calibration is per job (the median of each
        # side), and the rest of the candidate job ran at the baseline's speed: a real slowdown
        ("smollm2-135m full abcd0001", "throughput.tokens_per_s", "regression"),
        ("smollm2-135m lora abcd0002", "memory.train.peak_bytes", "regression"),
        ("smollm2-135m lora abcd0002", "throughput.tokens_per_s", "inconclusive"),
        ("smollm2-135m qlora abcd0003", "status", "regression"),
        ("smollm2-135m qlora abcd0003", "params.trainable", "regression"),
        ("smollm2-135m dora deadbeef", "record", "missing"),
        ("smollm2-135m lora8 abcd0005", "record", "missing"),
    }
