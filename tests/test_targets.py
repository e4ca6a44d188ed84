"""Target tasks: generated from lm-eval's own definitions, trained on in their own scoring format,
scored with predictions lines; and the held-out loss.

The built-in comparison runs lm-eval's own arc/openbookqa YAMLs (indexed alone, not the 24 s
default index) with their hub datasets served from the same local JSONL.
"""

import json
import math

import datasets
import pytest
import yaml

from bench.data import builtin
from bench.evaluate.targets import tasks

pytestmark = pytest.mark.skipif(not builtin.is_unpacked(),
                                reason="built-in tasks not unpacked: run bash scripts/setup.sh")


def _manager(include_path):
    from lm_eval.tasks import TaskManager

    from bench.evaluate.mmlu.scoring import _prepare_environment

    _prepare_environment(offline=True)
    return TaskManager(include_path=str(include_path), include_defaults=False)


@pytest.fixture(scope="module")
def local_tasks():
    """{source: lm-eval Task object} of the generated local tasks."""
    names = {source: tasks.target_task(source) for source in builtin.TASKS}
    loaded = _manager(tasks.ensure_tasks()).load(list(names.values()))["tasks"]
    return {source: loaded[name] for source, name in names.items()}


@pytest.mark.parametrize("source", list(builtin.TASKS))
def test_generated_yaml_is_lm_evals_own_but_names_and_data(source):
    local = yaml.safe_load((tasks.ensure_tasks() / f"{tasks.target_task(source)}.yaml").read_text())
    own = tasks.load_yaml(tasks.lm_eval_tasks_root() / builtin.TASKS[source].lm_eval_yaml)
    changed = {"task", "tag", "dataset_path", "dataset_name", "dataset_kwargs"}
    assert {k: v for k, v in local.items() if k not in changed} == {k: v for k, v in own.items() if k not in changed}
    assert local["task"] == "ftbench_" + own["task"] and local["dataset_path"] == "json"
    assert local["dataset_kwargs"]["data_files"]["test"] == str(builtin.split_file(source, "test"))


def test_target_names():
    assert tasks.target_task("arc-easy") == "ftbench_arc_easy"
    assert tasks.target_task("openbookqa") == "ftbench_openbookqa"
    assert tasks.target_task("mmlu-validation") is None and tasks.target_task("/data/mine.jsonl") is None


@pytest.mark.parametrize("source", list(builtin.TASKS))
def test_training_examples_are_lm_evals_scoring_format(source, local_tasks):
    """prompt = lm-eval's doc_to_text, completion = delimiter + gold choice: every train doc of the
    default task, the first 500 of the others (lm-eval renders each doc's choices through jinja: slow)."""
    task = local_tasks[source]
    docs = list(task.training_docs())
    ours = builtin.examples(source)
    assert len(docs) == len(ours) == {"arc-easy": 2251, "arc-challenge": 1119, "openbookqa": 4957}[source]
    stop = None if source == "arc-easy" else 500
    for doc, example in zip(docs[:stop], ours[:stop]):
        assert example["prompt"] == task.doc_to_text(doc)
        assert example["completion"] == task.config.target_delimiter + task.doc_to_choice(doc)[task.doc_to_target(doc)]


class RecordingLM:
    """A stub lm-eval LM: records requests; prefers the shortest continuation. Built lazily."""

    @staticmethod
    def make():
        from lm_eval.api.model import LM

        class _Recorder(LM):
            def __init__(self):
                super().__init__()
                self.requests = []

            def loglikelihood(self, requests, disable_tqdm=False):
                self.requests += [tuple(r.args) for r in requests]
                return [(-float(len(r.args[1])), False) for r in requests]

            def loglikelihood_rolling(self, requests, disable_tqdm=False):
                raise NotImplementedError

            def generate_until(self, requests, disable_tqdm=False):
                raise NotImplementedError

        return _Recorder()


def _requests(task, include_path, shots):
    from lm_eval import simple_evaluate

    lm = RecordingLM.make()
    simple_evaluate(model=lm, tasks=[task], num_fewshot=shots, limit=5, task_manager=_manager(include_path),
                    log_samples=False, verbosity="ERROR")
    return sorted(lm.requests)


@pytest.mark.parametrize("source,builtin_task,folder", [("arc-easy", "arc_easy", "arc"),
                                                       ("openbookqa", "openbookqa", "openbookqa")])
@pytest.mark.parametrize("shots", [0, 2])
def test_local_prompts_equal_lm_evals_builtin(source, builtin_task, folder, shots, monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", tasks.hub_from_local(datasets.load_dataset))
    local = _requests(tasks.target_task(source), tasks.ensure_tasks(), shots)
    own = _requests(builtin_task, tasks.lm_eval_tasks_root() / folder, shots)
    assert len(local) >= 5 * 3 and local == own
    if source == "arc-easy":
        context, continuation = local[0]
        assert context.count("Question: ") == shots + 1 and context.endswith("\nAnswer:")
        assert continuation.startswith(" ")


def test_score_task_writes_one_prediction_per_question(tmp_path):
    from bench.evaluate.targets.scoring import score_task

    limit = 10
    out = score_task(lm=RecordingLM.make(), task="ftbench_arc_easy", limit=limit, predictions_path=tmp_path / "p.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    docs = builtin.read_split("arc-easy", "test")[:limit]
    # by hand: the stub's loglikelihood is -len(" " + choice), so acc picks the shortest choice; acc_norm
    # divides by the choice's length in characters, -(1 + 1/len), so it picks the longest (first on ties)
    lengths = [[len(c) for c in d["choices"]["text"]] for d in docs]
    picks = [min(range(len(ls)), key=ls.__getitem__) for ls in lengths]
    norm_picks = [max(range(len(ls)), key=ls.__getitem__) for ls in lengths]
    golds = [d["choices"]["label"].index(d["answerKey"]) for d in docs]
    assert [r["doc_id"] for r in rows] == list(range(limit)) and {r["task"] for r in rows} == {"ftbench_arc_easy"}
    assert [r["pred"] for r in rows] == picks and [r["target"] for r in rows] == golds
    assert all(r["subject"] is None and r["correct"] == (r["pred"] == r["target"]) for r in rows)
    assert rows[0]["loglikelihoods"] == [-1.0 - len(c) for c in docs[0]["choices"]["text"]]
    assert out["n"] == limit and out["limit"] == limit and out["predictions_file"] == "p.jsonl"
    assert out["acc"] == pytest.approx(sum(p == g for p, g in zip(picks, golds)) / limit)
    assert out["acc_norm"] == pytest.approx(sum(p == g for p, g in zip(norm_picks, golds)) / limit)
    assert out["acc"] != out["acc_norm"]  # the data tells the two metrics apart
    assert out["stderr"] is not None and out["questions_per_s"] > 0


def test_score_task_refuses_unknown_task_and_bad_limit(tmp_path):
    from bench.util.errors import BenchError
    from bench.evaluate.targets.scoring import score_task

    with pytest.raises(BenchError, match="unknown target task 'arc_easy'; valid choices: ftbench_arc_easy"):
        score_task(lm=None, task="arc_easy", limit=1, predictions_path=tmp_path / "p.jsonl")
    with pytest.raises(BenchError, match="target limit 0 is not valid"):
        score_task(lm=None, task="ftbench_arc_easy", limit=0, predictions_path=tmp_path / "p.jsonl")
    assert not (tmp_path / "p.jsonl").exists()


def test_heldout_losses_equal_the_models_own_loss(tiny_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bench.data import prepare
    from bench.evaluate.heldout import heldout_block, per_example_losses

    tok = AutoTokenizer.from_pretrained(tiny_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float32)
    model.train()
    prepared = prepare(tokenizer=tok, source="arc-easy", seq_len=64, heldout=5)
    batches = prepared.heldout_batches(batch_size=2)
    losses, tokens, mean = per_example_losses(model, batches, device="cpu")
    assert model.training  # its mode is given back
    assert len(losses) == 5 and tokens == sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
    by_hand, weighted = [], 0.0
    with torch.no_grad():
        model.eval()
        for batch in batches:
            for row in range(batch["input_ids"].shape[0]):
                one = {k: v[row:row + 1] for k, v in batch.items()}
                by_hand.append(model(**one).loss.item())  # HF's shifted mean over supervised tokens
                weighted += by_hand[-1] * int((one["labels"][:, 1:] != -100).sum())
    assert losses == pytest.approx(by_hand, rel=1e-5)
    assert mean == pytest.approx(weighted / tokens, rel=1e-5) and math.isfinite(mean)
    bf16, _, bf16_mean = per_example_losses(model, batches, device="cpu", autocast=torch.bfloat16)
    assert bf16 != losses and bf16 == pytest.approx(losses, rel=2e-2)  # autocast ran, and changed little
    block = heldout_block(losses=losses, tokens=tokens, mean=mean, ids=prepared.heldout_ids)
    assert block["n"] == 5 and block["ids"] == prepared.heldout_ids and block["loss"] == mean


def test_heldout_with_no_supervised_token_is_said_not_crashed():
    """Every held-out example lost its supervised tokens: the block holds no loss, and the
    progress line says why instead of formatting None (which crashed after training)."""
    import math

    from bench.evaluate.heldout import describe, heldout_block

    block = heldout_block(losses=[None, None], tokens=0, mean=math.nan, ids=["a", "b"])
    assert block["loss"] is None and block["losses"] == [None, None]
    assert describe(block) == "held-out loss not measured: none of the 2 examples kept a supervised token"
    assert (describe(heldout_block(losses=[2.0], tokens=3, mean=2.0, ids=["a"]))
            == "held-out loss 2.0000 over 1 examples")
