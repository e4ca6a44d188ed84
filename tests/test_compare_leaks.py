"""The small leaks of issue 26: suite weights from the paired questions, alpha compared exactly,
every row left out of the family named, and one Holm family for the report and `compare`."""

import json

import pytest

from bench.results.compare import as_runs, compare_runs, stats
from bench.results.compare.table import family_line
from tests.compare_helpers import copy_fixture
from tests.conftest import run_cli


def _run(folder, *, method, tasks, lls=None):
    """A record whose suite tasks' predictions are `tasks` = {task: [correct per question]};
    lls: a value for every log-likelihood (e.g. NaN), else the answer's choice scores highest."""
    folder.mkdir(parents=True)
    blocks = {}
    for task, answers in tasks.items():
        lines = [{"task": task, "subject": None, "doc_id": i, "target": 0, "pred": 0 if c else 1, "correct": c,
                  "loglikelihoods": [lls, lls] if lls is not None else ([-1.0, -2.0] if c else [-2.0, -1.0]),
                  "doc_hash": None, "prompt_hash": None} for i, c in enumerate(answers)]
        (folder / f"{task}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        blocks[task] = {"acc": sum(answers) / len(answers), "predictions_file": f"{task}.jsonl", "role": "forget"}
    record = {"schema_version": 2, "run_id": method, "model": "smollm2-135m", "method": method, "status": "ok",
              "seed": 0, "group_key": "g", "precision": {"policy": "fp32"}, "data": {"fingerprint": "f"},
              "heldout": None, "tasks": blocks, "mmlu": None, "config": {"seed": 0}}
    return as_runs([record], folder)[0]


def test_p_exactly_at_alpha_is_not_significant(tmp_path):
    """A row whose interval excludes 0 with p = 0.05 exactly (a family of one, so Holm p = 0.05)
    is held back: alpha is the literal 0.05, not 1 - 0.95 = 0.050000000000000044."""
    from dataclasses import replace

    from bench.results.compare.pairs import Comparison, adjusted

    base = _run(tmp_path / "a", method="base", tasks={"ftbench_hellaswag": [True, False] * 5})
    full = _run(tmp_path / "b", method="full", tasks={"ftbench_hellaswag": [True] * 10})
    row = next(r for r in compare_runs([base, full], resamples=200, seed=0, categories={}).rows
               if r.metric == "ftbench_hellaswag")
    assert row.lo > 0 and row.level == 0.95
    edge = replace(row, p=0.05, checkpoint_p=0.05, verdict=stats.BETTER, checkpoint_verdict=stats.BETTER,
                   held_back=None, checkpoint_held_back=None)
    out = adjusted(Comparison(rows=[edge]))
    assert out.rows[0].p_adjusted == 0.05 and out.rows[0].verdict == stats.TIED and out.rows[0].held_back == "holm"
    assert out.rows[0].checkpoint_verdict == stats.TIED


def test_a_truncated_suite_task_on_a_copy_of_base_gives_zero(tmp_path):
    """Identical answers, one arm scored 10 of a task's 30 questions: the suite row is 0.0."""
    base = _run(tmp_path / "a", method="base", tasks={"ftbench_hellaswag": [True] * 12 + [False] * 18,
                                                       "ftbench_piqa": [True] * 20 + [False] * 10})
    cut = _run(tmp_path / "b", method="full", tasks={"ftbench_hellaswag": ([True] * 12 + [False] * 18)[:10],
                                                      "ftbench_piqa": [True] * 20 + [False] * 10})
    out = compare_runs([base, cut], resamples=500, seed=0, categories={})
    suite = next(r for r in out.rows if r.metric == "suite")
    assert suite.diff == 0.0 and suite.lo == 0.0 and suite.hi == 0.0
    assert suite.n == 40 and suite.dropped == 20


def test_rows_left_out_are_named_and_counted(tmp_path):
    """An arm with no usable log-likelihoods loses its .prob rows: each is named, with its reason."""
    base = _run(tmp_path / "a", method="base", tasks={"ftbench_hellaswag": [True, False] * 5})
    blind = _run(tmp_path / "b", method="full", tasks={"ftbench_hellaswag": [False, True] * 5}, lls=float("nan"))
    out = compare_runs([base, blind], resamples=200, seed=0, categories={})
    assert out.left_out == ["smollm2-135m full vs base ftbench_hellaswag.prob: scored by base only "
                            "(no finite log-likelihoods on the other side)"]
    assert "1 row(s) left out, named below" in family_line(out)


def test_report_chart_table_and_compare_share_one_holm_family(tmp_path):
    """The learns-vs-forgets chart, the report's verdict table and `compare --json` give every row
    the same Holm p: one family, every row `compare` shows for the directory."""
    from bench.results import store
    from bench.results.report import benefit

    root = copy_fixture("compare_v2", tmp_path)
    records, _ = store.read(root)
    paired = benefit.paired([("v2", records, root)])
    data = json.loads(run_cli("compare", root, "--json").stdout)
    cli = {(r["model"], r["a"], r["b"], r["metric"]): r["p_adjusted"] for r in data["rows"]}
    table = {(r.model, r.a, r.b, r.metric): r.p_adjusted for _, r in paired.rows}
    assert table == cli and len(cli) == data["settings"]["family"]
    checked = 0
    for row in paired.learn_forget:
        for name, figure in (("ftbench_arc_easy", row["target_gain"]), ("mmlu", row["mmlu_change"]),
                             ("heldout.loss", row["heldout_change"])):
            assert figure["p_adjusted"] == pytest.approx(cli[(row["model"], row["method"], "base", name)], abs=0)
            checked += 1
    assert checked == 9
