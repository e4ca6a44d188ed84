"""bench.evaluate.mmlu scoring end to end through lm-eval, on a synthetic 57-subject MMLU in a temp cache.

Subjects have different sizes, so a size-weighted group average differs from the plain mean
of subject accuracies. A stub LM that always prefers "A" makes the expected accuracy exact;
a tiny random Llama shows lm-eval scores the trained weights; plain, peft-wrapped and 4-bit
models are scored through the worker in the session's smoke run (tests/test_cli.py).
"""

import json

import pytest

from bench.evaluate.mmlu import score
from bench.evaluate.mmlu.scoring import score_lm
from bench.evaluate.mmlu.tasks import CATEGORIES, builtin_subjects
from bench.util import paths
from bench.util.errors import BenchError

SUBJECTS = builtin_subjects()  # subject -> category
TOKENIZER_DIR = paths.models_dir() / "smollm2-135m"  # the real cache, read before any fixture swaps it


def _question(subject, number, answer):
    return {"question": f"Question {number} about {subject}?", "subject": subject,
            "choices": ["w", "x", "y", "z"], "answer": answer}


@pytest.fixture(scope="module")
def synthetic_cache(tmp_path_factory):
    """57 subjects; subject i has 1 + i % 3 test questions. The answer is A on every question
    of a 3-question subject, the first of a 2-question one and none else, so the subject
    accuracies (1, 0.5, 0) average to 0.5 while the questions average to 76/114."""
    root = tmp_path_factory.mktemp("cache")
    expected = {}
    for i, subject in enumerate(sorted(SUBJECTS)):
        folder = root / "mmlu" / subject
        folder.mkdir(parents=True)
        dev = [_question(subject, j, j % 4) for j in range(5)]
        size = 1 + i % 3
        test = [_question(subject, j, 0 if size == 3 or (size == 2 and j == 0) else 1) for j in range(size)]
        (folder / "dev.jsonl").write_text("".join(json.dumps(q) + "\n" for q in dev))
        (folder / "test.jsonl").write_text("".join(json.dumps(q) + "\n" for q in test))
        expected[subject] = [q["answer"] == 0 for q in test]
    (root / "mmlu" / "COMPLETE").write_text("synthetic\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FTBENCH_CACHE", str(root))
        yield expected


def _pick_a_lm():
    from lm_eval.api.model import LM

    class PickA(LM):
        def loglikelihood(self, requests, disable_tqdm=False):
            return [(0.0 if r.args[1] == " A" else -1.0, False) for r in requests]

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            raise NotImplementedError

        def generate_until(self, requests, disable_tqdm=False):
            raise NotImplementedError

    return PickA()


def test_group_average_is_weighted_by_subject_size(synthetic_cache, tmp_path):
    out = score_lm(lm=_pick_a_lm(), shots=0, limit=None, predictions_path=tmp_path / "p.jsonl")["mmlu"]
    flat = [c for marks in synthetic_cache.values() for c in marks]
    by_subject = {s: sum(m) / len(m) for s, m in synthetic_cache.items()}
    micro, macro = sum(flat) / len(flat), sum(by_subject.values()) / len(by_subject)
    assert (micro, macro) == (pytest.approx(76 / 114), pytest.approx(0.5))  # the data makes them differ
    assert out["acc"] == pytest.approx(micro)
    assert out["n"] == len(flat) == 114
    assert out["subjects"] == pytest.approx(by_subject)
    for category in CATEGORIES:
        marks = [c for s, m in synthetic_cache.items() if SUBJECTS[s] == category for c in m]
        assert out["categories"][category] == pytest.approx(sum(marks) / len(marks))


def test_predictions_file_has_one_line_per_question(synthetic_cache, tmp_path):
    out = score_lm(lm=_pick_a_lm(), shots=5, limit=2, predictions_path=tmp_path / "p.jsonl")["mmlu"]
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(rows) == out["n"] == sum(min(2, len(m)) for m in synthetic_cache.values())
    assert {r["subject"] for r in rows} == set(SUBJECTS)
    assert all(r["pred"] == 0 and r["correct"] == (r["target"] == 0) for r in rows)
    assert all(r["loglikelihoods"] == [0.0, -1.0, -1.0, -1.0] for r in rows)
    assert out["shots"] == 5 and out["limit"] == 2 and out["predictions_file"] == "p.jsonl"
    assert out["lm_eval_version"] and "ftbench_mmlu v" in out["task_version"]
    assert not list(tmp_path.glob(".p.jsonl.*"))  # no temp file left behind


def _tiny_llama():
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer_dir = TOKENIZER_DIR
    if not (tokenizer_dir / "tokenizer.json").exists():
        pytest.skip(f"no SmolLM2 tokenizer in {tokenizer_dir}: run bash scripts/setup.sh")
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=4, vocab_size=49152)
    return LlamaForCausalLM(config), AutoTokenizer.from_pretrained(tokenizer_dir)


@pytest.fixture(scope="module")
def tiny():
    return _tiny_llama()


# A plain, a peft-wrapped and a 4-bit + peft model scored end to end: the session's smoke run
# (base, lora, qlora through the worker; tests/test_cli.py::test_the_child_evaluates_the_trained_model).


@pytest.mark.parametrize("options, match", [
    (dict(shots=26, limit=1), "shots"),
    (dict(shots=0, limit=0), "limit"),
    (dict(shots=0, limit=1, tasks=["no_such_task"]), "unknown task"),
    (dict(shots=0, limit=1, batch_size=0), "batch size"),
    (dict(shots=0, limit=1, source="hub"), "mmlu source"),
])
def test_bad_options_raise_before_the_model_is_touched(options, match, tmp_path):
    kwargs = {"model": None, "tokenizer": None, "batch_size": 8, "predictions_path": tmp_path / "p.jsonl", **options}
    with pytest.raises(BenchError, match=match):
        score(**kwargs)


def test_corrupt_data_raises_before_the_model_is_touched(synthetic_cache, tmp_path):
    path = paths.mmlu_dir() / "virology" / "test.jsonl"
    saved = path.read_text()
    try:
        path.write_text(saved + "{broken\n")
        with pytest.raises(BenchError, match=r"corrupt at .*virology/test.jsonl.*setup.sh"):
            score(model=None, tokenizer=None, shots=0, limit=1, batch_size=8, predictions_path=tmp_path / "p.jsonl")
    finally:
        path.write_text(saved)


def _loglikelihoods(path):
    """Every question's four loglikelihoods, flattened in file order."""
    return [ll for line in path.read_text().splitlines() for ll in json.loads(line)["loglikelihoods"]]


def test_lm_eval_scores_the_trained_weights_not_a_copy(tiny, synthetic_cache, tmp_path):
    """lm-eval must score the model object the run trained: a fresh adapter (B = 0) leaves every
    loglikelihood as the plain model's, and changing one adapter weight changes them."""
    import torch
    from peft import get_peft_model, LoraConfig

    model, tokenizer = tiny
    plain = tmp_path / "plain.jsonl"
    score(model=model, tokenizer=tokenizer, shots=0, limit=1, batch_size=8, predictions_path=plain)
    wrapped = get_peft_model(model, LoraConfig(r=8, target_modules="all-linear"))
    fresh, perturbed = tmp_path / "fresh.jsonl", tmp_path / "perturbed.jsonl"
    score(model=wrapped, tokenizer=tokenizer, shots=0, limit=1, batch_size=8, predictions_path=fresh)
    name, weight = next((n, p) for n, p in wrapped.named_parameters() if "lora_B" in n)
    with torch.no_grad():
        weight.copy_(torch.randn_like(weight))
    score(model=wrapped, tokenizer=tokenizer, shots=0, limit=1, batch_size=8, predictions_path=perturbed)
    wrapped.unload()
    assert _loglikelihoods(fresh) == pytest.approx(_loglikelihoods(plain), abs=1e-5)
    changed = sum(abs(a - b) > 1e-6 for a, b in zip(_loglikelihoods(perturbed), _loglikelihoods(fresh)))
    assert changed == 4 * 57, f"perturbing {name} changed only {changed} of 228 loglikelihoods"
