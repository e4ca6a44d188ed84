"""Pairing rules (same seed, base with every seed, precision and data must match), held-out loss
pairing, v1 records, and the learns-versus-forgets and seed summaries on the committed fixtures."""

import json

import pytest

from bench.results.compare import as_runs, compare_runs, learn_forget, load_runs, seed_summary
from bench.results.compare.runs import Run, read_predictions
from bench.util.errors import BenchError
from tests.compare_helpers import CATEGORIES, copy_fixture, record


def compare(records, **kw):
    return compare_runs(as_runs(records, "."), resamples=500, seed=0, categories={}, **kw)


def pairs_of(comparison):
    return [(r.a, r.b, r.seeds) for r in comparison.rows]


def test_same_seed_pairs_with_same_seed():
    records = [record(m, seed=s) for m in ("full", "lora") for s in (0, 1)]
    assert pairs_of(compare(records)) == [("full", "lora", [[0, 0], [1, 1]])]


def test_base_runs_once_and_pairs_with_every_seed():
    records = [record("base", seed=0)] + [record("lora", seed=s) for s in (0, 1, 2)]
    assert pairs_of(compare(records)) == [("lora", "base", [[0, 0], [1, 0], [2, 0]])]


def test_every_method_against_base_and_each_other():
    records = [record(m) for m in ("qlora", "base", "full", "lora")]
    assert [(a, b) for a, b, _ in pairs_of(compare(records))] == [
        ("full", "base"), ("lora", "base"), ("qlora", "base"), ("full", "lora"), ("full", "qlora"), ("lora", "qlora")]
    assert [(a, b) for a, b, _ in pairs_of(compare(records, against_base_only=True))] == [
        ("full", "base"), ("lora", "base"), ("qlora", "base")]


def test_seed_on_one_side_only_is_left_out_with_a_note():
    records = [record("full", seed=0), record("full", seed=1), record("lora", seed=0)]
    out = compare(records)
    assert pairs_of(out) == [("full", "lora", [[0, 0]])]
    assert any("seed(s) 1 on one side only" in n for n in out.notes)


def test_no_common_seed_is_unmatched():
    out = compare([record("full", seed=0), record("lora", seed=1)])
    assert out.rows == [] and [u.reason for u in out.unmatched] == ["no common seed (0 vs 1)"]


def test_precision_mismatch_is_unmatched_never_compared():
    records = [record("base"), record("lora", seed=0), record("lora", seed=1, policy="bf16-mixed")]
    out = compare(records)
    assert pairs_of(out) == [("lora", "base", [[0, 0]])]
    (u,) = out.unmatched
    assert (u.a, u.b, u.seeds) == ("lora", "base", [1, 0])
    assert u.reason == "precision policy differs: bf16-mixed vs fp32"


def test_data_fingerprint_mismatch_is_unmatched():
    out = compare([record("base", fingerprint="aaaa"), record("lora", fingerprint="bbbb")])
    assert out.rows == [] and "data fingerprint differs" in out.unmatched[0].reason


def test_unknown_precision_is_not_a_mismatch():
    plain = record("base")
    plain.pop("precision")
    assert pairs_of(compare([plain, record("lora")])) == [("lora", "base", [[0, 0]])]


def test_groups_and_models_never_mix():
    records = [record("base", group="g1"), record("lora", group="g2"), record("lora", model="other")]
    out = compare(records)
    assert out.rows == [] and out.unmatched == []
    assert sum("nothing to pair it with" in n for n in out.notes) == 3


def test_failed_runs_are_ignored():
    records = [record("base"), record("lora"), record("full", status="oom")]
    assert [(a, b) for a, b, _ in pairs_of(compare(records))] == [("lora", "base")]


def test_heldout_loss_pairs_by_example_id():
    # A: x 1.0, y 2.0, z 3.0; B (other order): z 2.5, y 2.5, w 9.0
    # common y, z: diffs A-B = 2.0-2.5 = -0.5 and 3.0-2.5 = +0.5 -> mean 0; x and w dropped
    a = record("lora", losses=[1.0, 2.0, 3.0], ids=["x", "y", "z"])
    b = record("base", losses=[2.5, 2.5, 9.0], ids=["z", "y", "w"])
    (row,) = compare([a, b]).rows
    assert (row.metric, row.kind, row.n, row.dropped) == ("heldout.loss", "loss", 2, 2)
    assert (row.value_a, row.value_b, row.diff) == (2.5, 2.5, 0.0)
    assert row.mcnemar_p is None and row.n_needed_1pt is None


def test_heldout_loss_lower_is_better():
    base = [2.0 + 0.01 * i for i in range(40)]
    (row,) = compare([record("base", losses=base), record("lora", losses=[x - 0.3 for x in base])]).rows
    assert row.diff == pytest.approx(-0.3) and row.hi < 0 and row.verdict == "better"
    (row,) = compare([record("base", losses=base), record("lora", losses=[x + 0.3 for x in base])]).rows
    assert row.verdict == "worse"


def test_heldout_with_mismatched_ids_is_refused():
    bad = record("lora", losses=[1.0, 2.0], ids=["a"])
    with pytest.raises(BenchError, match="heldout.losses and heldout.ids"):
        compare([record("base"), bad])


def test_v1_records_read_without_failing():
    # v1 records as they were: no seed, group_key, precision, data, heldout or tasks blocks
    v1 = []
    for method in ("base", "lora"):
        r = record(method)
        for key in ("seed", "group_key", "precision", "data", "heldout", "tasks"):
            r.pop(key)
        r.update(schema_version=1, compare_key="c0ffee")
        v1.append(r)
    out = compare(v1)
    assert out.rows == [] and out.unmatched == [] and list(out.groups) == [("m", "c0ffee")]


def test_v1_fixture_compares_mmlu(tmp_path):
    runs = load_runs([copy_fixture("compare_v1", tmp_path)])
    out = compare_runs(runs, resamples=500, seed=0, categories=CATEGORIES)
    assert [(r.a, r.b, r.metric) for r in out.rows] == [
        ("lora", "base", m)
        for m in ("mmlu", "mmlu.prob", "mmlu.stem", "mmlu.humanities", "mmlu.social_sciences", "mmlu.other")]
    assert out.rows[0].n == 96 and out.rows[1].n == 96 and sum(r.n for r in out.rows[2:]) == 96


@pytest.fixture
def v2(tmp_path):
    return load_runs([copy_fixture("compare_v2", tmp_path)])


def test_v2_fixture_rows_match_the_predictions(v2):
    out = compare_runs(v2, resamples=1000, seed=0, categories=CATEGORIES)
    rows = {(r.a, r.b, r.metric): r for r in out.rows}
    arc = rows[("lora", "base", "ftbench_arc_easy")]
    assert arc.seeds == [[0, 0], [1, 0]] and arc.dropped == 1 and arc.n == 149  # lora seed 1 lacks one question
    assert arc.role == "target" and arc.kind == "accuracy"
    # the difference equals what the predictions files say, counted here independently
    root = v2[0].root
    by_run = {(r.record["method"], r.record["seed"]): r.record for r in v2 if r.record["model"] == "smollm2-135m"}

    def correct(method, seed):
        rows = read_predictions(root / by_run[(method, seed)]["tasks"]["ftbench_arc_easy"]["predictions_file"],
                                run_id="t")
        return {k: v["correct"] for k, v in rows.items()}

    base, l0, l1 = correct("base", 0), correct("lora", 0), correct("lora", 1)
    keys = set(base) & set(l0) & set(l1)
    expected = sum((l0[k] + l1[k]) / 2 - base[k] for k in keys) / len(keys)
    assert arc.diff == pytest.approx(expected)
    assert [(u.a, u.b, u.seeds) for u in out.unmatched] == [
        ("qlora", "base", [1, 0]), ("full", "qlora", [1, 1]), ("lora", "qlora", [1, 1])]
    held = rows[("full", "base", "heldout.loss")]  # 2 seeds: these checkpoints differ, the method is not shown to
    assert (held.checkpoint_verdict == "better" and held.scope == "method"
            and held.verdict == "indistinguishable at this n")


def test_learn_forget_on_v2_fixture(v2):
    rows = {r["method"]: r for r in learn_forget(v2, resamples=1000, seed=0, categories=CATEGORIES)}
    assert sorted(rows) == ["full", "lora", "qlora"]
    full = rows["full"]
    assert full["target_task"] == "ftbench_arc_easy" and full["seeds"] == [0, 1]
    assert full["target_gain"]["checkpoint_verdict"] == "better" and full["target_gain"]["scope"] == "method"
    assert full["mmlu_change"]["diff"] < 0 and set(full["mmlu_categories"]) == {
        "stem", "humanities", "social_sciences", "other"}
    assert full["heldout_change"]["diff"] < 0
    assert rows["qlora"]["seeds"] == [0]  # seed 1 ran in another precision: not compared
    # the same from records and their directory
    records = [r.record for r in v2]
    assert learn_forget(records, v2[0].root, resamples=1000, seed=0, categories=CATEGORIES)[0] == rows["full"]


def test_seed_summary_mean_and_interval():
    records = [record("lora", seed=s) for s in (0, 1)] + [record("base")]
    records[0]["mmlu"] = {"acc": 0.30}
    records[1]["mmlu"] = {"acc": 0.34}
    records[2]["mmlu"] = {"acc": 0.25}
    out = seed_summary(records, metric="mmlu.acc")
    assert [(r["method"], r["seeds"]) for r in out] == [("base", [0]), ("lora", [0, 1])]
    lora = out[1]
    # mean .32, sd = sqrt(2 * .02^2 / 1) = .028284, half = 12.706 * .028284 / sqrt(2) = .25412
    assert lora["mean"] == pytest.approx(0.32) and lora["hi"] - lora["mean"] == pytest.approx(0.25412, abs=1e-5)
    assert out[0]["lo"] is None
    runs = [Run(r, ".") for r in records]
    assert seed_summary(runs, metric="mmlu.acc") == out


def test_corrupt_and_missing_predictions(tmp_path):
    path = tmp_path / "p.jsonl"
    with pytest.raises(BenchError, match="is missing"):
        read_predictions(path, run_id="r1")
    path.write_text(json.dumps({"task": "t", "doc_id": 0, "correct": True}) + "\n{not json\n")
    with pytest.raises(BenchError, match=r"p.jsonl:2: corrupt predictions line"):
        read_predictions(path, run_id="r1")
    path.write_text(json.dumps({"task": "t", "doc_id": 0, "correct": 1}) + "\n")
    with pytest.raises(BenchError, match="corrupt"):
        read_predictions(path, run_id="r1")
    path.write_text("\n")
    with pytest.raises(BenchError, match="empty predictions file"):
        read_predictions(path, run_id="r1")


def test_questions_are_identified_by_task_and_doc_id(tmp_path):
    # doc_id 0 in two tasks is two questions
    rows = [{"task": t, "doc_id": 0, "correct": c} for t, c in (("t1", True), ("t2", False))]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_predictions(tmp_path / "p.jsonl", run_id="r").keys() == {("t1", 0), ("t2", 0)}


def test_device_mismatch_is_unmatched():
    gpu = record("lora")
    gpu["memory"] = {"device": "cuda:0"}
    out = compare([record("base") | {"memory": {"device": "cpu"}}, gpu])
    assert out.rows == [] and out.unmatched[0].reason == "device differs: cuda vs cpu"  # A (lora) first


def _task_run(tmp_path, method, rows):
    """A run whose one task's predictions are `rows` [(doc_id, correct, loglikelihoods, target, doc_hash)]."""
    folder = tmp_path / method
    folder.mkdir()
    lines = [{"task": "t", "subject": None, "doc_id": d, "target": t, "pred": 0, "correct": c,
              "loglikelihoods": ll, "doc_hash": h, "prompt_hash": None} for d, c, ll, t, h in rows]
    (folder / "p.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    r = record(method, losses=[])
    r["heldout"] = None
    r["tasks"] = {"t": {"acc": 0.5, "predictions_file": "p.jsonl", "role": "target"}}
    return Run(r, folder)


def test_gold_probability_from_the_loglikelihoods(tmp_path):
    # softmax of (ln .5, ln .3, ln .2) at target 0 is .5; (ln 1, ln 3) at target 1 is .75
    import math
    base = _task_run(tmp_path, "base", [(0, True, [math.log(.5), math.log(.3), math.log(.2)], 0, None),
                                        (1, True, [0.0, math.log(3)], 1, None)])
    lora = _task_run(tmp_path, "lora", [(0, True, [math.log(.8), math.log(.1), math.log(.1)], 0, None),
                                        (1, True, [0.0, math.log(9)], 1, None)])
    out = compare_runs([base, lora], resamples=200, seed=0, categories={})
    prob = next(r for r in out.rows if r.metric == "t.prob")
    assert prob.kind == "score" and prob.value_b == pytest.approx((0.5 + 0.75) / 2)
    assert prob.value_a == pytest.approx((0.8 + 0.9) / 2) and prob.n == 2


def test_questions_whose_doc_hash_differs_are_not_paired(tmp_path):
    base = _task_run(tmp_path, "base", [(0, True, [0.0, -1.0], 0, "h0"), (1, False, [0.0, -1.0], 1, "h1"),
                                        (2, True, [0.0, -1.0], 0, "h2")])
    lora = _task_run(tmp_path, "lora", [(0, True, [0.0, -1.0], 0, "h0"), (1, True, [-1.0, 0.0], 1, "other"),
                                        (2, True, [0.0, -1.0], 0, None)])
    out = compare_runs([base, lora], resamples=200, seed=0, categories={})
    acc = next(r for r in out.rows if r.metric == "t")
    assert acc.n == 2 and acc.hash_mismatch == 1 and acc.dropped == 1  # doc 1 left out; doc 2 has one hash only


def test_family_and_holm_over_every_row():
    records = [record("base", losses=[2.0] * 30), record("lora", losses=[1.0 + 0.01 * i for i in range(30)]),
               record("full", losses=[1.5] * 30)]
    for r in records:
        r["heldout"]["ids"] = [f"e{i}" for i in range(30)]
    out = compare(records)
    assert out.family == len(out.rows) == 3 and out.adjust == "holm"
    assert all(r.p_adjusted is not None and r.p_adjusted >= r.p for r in out.rows)
    raw = compare(records, adjust="none")
    assert raw.family == 3 and all(r.p_adjusted is None for r in raw.rows)
    with pytest.raises(ValueError, match="adjust must be one of holm, none"):
        compare(records, adjust="bonferroni")


def test_base_pairs_with_multi_process_runs_as_their_own_arm():
    """The group key leaves nproc and strategy out (bench.run.matrix), so one base run pairs with a
    one-process lora and with an FSDP lora; the two loras are told apart by their arm."""
    fsdp = record("lora")
    fsdp["config"].update(nproc=2, strategy="fsdp")
    out = compare([record("base"), record("lora"), fsdp])
    assert [(a, b) for a, b, _ in pairs_of(out)] == [("lora", "base"), ("lora[fsdp x2]", "base"),
                                                    ("lora", "lora[fsdp x2]")]
    assert not any("several ok runs" in n for n in out.notes)


def test_group_key_leaves_the_process_layout_out():
    from bench.run.matrix import distribute, finish_spec

    one = finish_spec(distribute({"model": "m", "method": "lora", "seed": 0, "steps": 4}))
    two = finish_spec(distribute({"model": "m", "method": "lora", "seed": 0, "steps": 4, "nproc": 2}))
    base = finish_spec(distribute({"model": "m", "method": "base", "seed": 0, "steps": 4, "nproc": 2}))
    assert one["group_key"] == two["group_key"] == base["group_key"]
    assert one["spec_hash"] != two["spec_hash"]  # still different work for the gate


def test_a_run_whose_evaluation_was_skipped_is_said():
    fsdp = record("lora")
    fsdp["config"].update(nproc=2, strategy="fsdp")
    fsdp["distributed"] = {"eval_skipped": "a sharded model cannot be scored by lm-eval"}
    out = compare([record("base"), fsdp])
    assert any("lora[fsdp x2] seed 0: evaluation skipped (a sharded model cannot be scored by lm-eval)" in n
               for n in out.notes)
