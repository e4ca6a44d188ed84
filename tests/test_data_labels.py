"""Labels: completion-only masking token by token, chat turns, truncation accounting, packing.

The tokenizer is tiny-llama's (SmolLM2's tokenizer and chat template). Files are written here.
"""

import json

import pytest

from bench.data import prepare
from bench.util.errors import BenchError

IGNORE = -100


@pytest.fixture(autouse=True)
def temp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tok(tiny_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_path)


def fresh_tokenizer(tiny_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_path)


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def rows_of(batch):
    """(ids, labels) per row, cut at the attention mask."""
    out = []
    for ids, mask, labels in zip(batch["input_ids"].tolist(), batch["attention_mask"].tolist(),
                                 batch["labels"].tolist()):
        n = sum(mask)
        assert mask == [1] * n + [0] * (len(mask) - n)  # right padding only
        assert labels[n:] == [IGNORE] * (len(mask) - n)  # padding never supervised
        out.append((ids[:n], labels[:n]))
    return out


def words(n):
    """n tokens of SmolLM2's tokenizer: "one" then " one" repeated."""
    return " ".join(["one"] * n)


def test_completion_only_masking_token_by_token(tok, tmp_path):
    pairs = [("Question: What is 2+2?\nAnswer:", " 4"), ("Capital of France:", " Paris, of course.")]
    path = jsonl(tmp_path / "pc.jsonl", [{"prompt": p, "completion": c} for p, c in pairs])
    prepared = prepare(tokenizer=tok, source=path, seq_len=32, heldout=0)
    (batch,) = prepared.train_batches(seed=0, steps=1, grad_accum=1, batch_size=2)
    seen = {}
    for ids, labels in rows_of(batch):
        seen[tok.decode(ids)] = (ids, labels)
    for p, c in pairs:
        prompt_ids = tok(p)["input_ids"]
        completion_ids = tok(c, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        ids, labels = seen[p + c + tok.eos_token]
        assert ids == prompt_ids + completion_ids
        for i, (token, label) in enumerate(zip(ids, labels)):
            on_completion = i >= len(prompt_ids)
            assert label == (token if on_completion else IGNORE), (i, token, label)


def test_train_on_prompt_supervises_every_real_token(tok, tmp_path):
    path = jsonl(tmp_path / "pc.jsonl", [{"prompt": "Say:", "completion": " yes"}])
    prepared = prepare(tokenizer=tok, source=path, seq_len=16, heldout=0, train_on_prompt=True)
    ((ids, labels),) = rows_of(prepared.train_batches(seed=0, steps=1, grad_accum=1, batch_size=1)[0])
    assert labels == ids


def test_text_format_supervises_everything_and_ends_in_eos(tok, tmp_path):
    path = jsonl(tmp_path / "t.jsonl", [{"text": "Water is wet."}])
    prepared = prepare(tokenizer=tok, source=path, seq_len=16, heldout=0)
    ((ids, labels),) = rows_of(prepared.train_batches(seed=0, steps=1, grad_accum=1, batch_size=1)[0])
    assert ids == tok("Water is wet.")["input_ids"] + [tok.eos_token_id] and labels == ids


CHAT = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Add 2 and 2."}, {"role": "assistant", "content": "4"}]


def test_chat_supervises_exactly_the_assistant_turns(tok, tmp_path):
    path = jsonl(tmp_path / "c.jsonl", [{"messages": CHAT}])
    prepared = prepare(tokenizer=tok, source=path, seq_len=128, heldout=0)
    ((ids, labels),) = rows_of(prepared.train_batches(seed=0, steps=1, grad_accum=1, batch_size=1)[0])
    assert tok.decode(ids) == tok.apply_chat_template(CHAT, tokenize=False)
    spans, current = [], []
    for token, label in zip(ids, labels):
        assert label in (token, IGNORE)
        if label != IGNORE:
            current.append(token)
        elif current:
            spans.append(current)
            current = []
    spans += [current] if current else []
    # each assistant turn as SmolLM2's template writes it, end-of-turn marker included
    expected = [tok(m["content"] + "<|im_end|>\n", add_special_tokens=False)["input_ids"]
                for m in CHAT if m["role"] == "assistant"]
    assert spans == expected


def test_chat_without_a_template_is_one_line(tiny_path, tmp_path):
    tokenizer = fresh_tokenizer(tiny_path)
    tokenizer.chat_template = None
    path = jsonl(tmp_path / "c.jsonl", [{"messages": CHAT}])
    with pytest.raises(BenchError, match="chat data needs a tokenizer with a chat template") as info:
        prepare(tokenizer=tokenizer, source=path, seq_len=64, heldout=0)
    assert "\n" not in str(info.value)


def test_chat_template_that_rewrites_earlier_turns_is_refused(tiny_path, tmp_path):
    tokenizer = fresh_tokenizer(tiny_path)
    # like templates that drop past reasoning: an assistant turn renders differently once it is not last
    tokenizer.chat_template = ("{% for m in messages %}{% if m.role == 'assistant' and not loop.last %}"
                               "assistant: [earlier]\n{% else %}{{ m.role }}: {{ m.content }}\n{% endif %}{% endfor %}"
                               "{% if add_generation_prompt %}assistant: {% endif %}")
    path = jsonl(tmp_path / "c.jsonl", [{"messages": CHAT}])
    with pytest.raises(BenchError, match="does not render turn by turn"):
        prepare(tokenizer=tokenizer, source=path, seq_len=64, heldout=0)


def crafted(tok, tmp_path, seq_len=16):
    """Four examples around seq_len: whole; completion cut; prompt ends one before the edge
    (first completion token is the last kept); prompt fills the row (nothing supervised)."""
    rows = [{"prompt": words(4), "completion": " two"},
            {"prompt": words(10), "completion": " two two two two two two two two"},
            {"prompt": words(seq_len - 1), "completion": " two two"},
            {"prompt": words(seq_len), "completion": " two"}]
    for row, n in zip(rows, (4, 10, seq_len - 1, seq_len)):
        assert len(tok(row["prompt"])["input_ids"]) == n  # the crafting assumption itself
    return jsonl(tmp_path / "lengths.jsonl", rows)


def test_truncation_keeps_the_answer(tok, tmp_path):
    """Too long: the prompt is cut from the left, just enough, so the answer and its eos stay
    (right truncation lost 3 of 9 answer tokens of the second example and all of the fourth's)."""
    prepared = prepare(tokenizer=tok, source=crafted(tok, tmp_path), seq_len=16, heldout=0)
    assert prepared.info["truncated_examples"] == 3 and prepared.info["prompt_cut_examples"] == 3
    assert prepared.info["answer_cut_examples"] == 0 and prepared.info["unsupervised_examples"] == 0
    assert prepared.lengths() == [4 + 1 + 1, 10 + 8 + 1, 15 + 2 + 1, 16 + 1 + 1]
    batch = prepared.train_batches(seed=0, steps=1, grad_accum=1, batch_size=4)[0]
    assert tuple(batch["input_ids"].shape) == (4, 16)
    rows = {len(ids): (ids, labels) for ids, labels in rows_of(batch)}
    supervised = sorted(sum(1 for label in labels[1:] if label != IGNORE) for _, labels in rows_of(batch))
    assert supervised == [2, 2, 3, 9]  # " two" + eos; " two" + eos; " two two" + eos; 8 x " two" + eos
    eos = tok.eos_token_id
    assert all(ids[-1] == eos for ids, _ in rows_of(batch))  # every row still ends its answer
    assert sorted(rows) == [6, 16]  # the three long ones fill the row exactly


def test_an_answer_longer_than_the_row_keeps_one_prompt_token(tok, tmp_path):
    path = jsonl(tmp_path / "long.jsonl", [{"prompt": words(n), "completion": " two" * 20} for n in (6, 7)])
    prepared = prepare(tokenizer=tok, source=path, seq_len=16, heldout=0)
    (ids, labels), _ = rows_of(prepared.train_batches(seed=0, steps=1, grad_accum=1, batch_size=2)[0])
    assert labels[0] == IGNORE and all(label != IGNORE for label in labels[1:])  # 1 prompt token, then answer
    assert prepared.info["answer_cut_examples"] == 2 and prepared.info["unsupervised_examples"] == 0


def test_too_many_unsupervised_fails_with_a_seq_len_suggestion():
    """Only an example with no supervised token at all is unsupervised now; built directly."""
    from bench.data.encode import Encoded
    from bench.data.prepared import Prepared, _check_supervision

    encoded = [Encoded(tuple(range(n)), tuple([IGNORE] * n if i == 0 else range(n)))
               for i, n in enumerate((8, 19, 6, 6))]
    prepared = Prepared(source="s", fmt="prompt-completion", examples=[{"id": i} for i in range(4)], encoded=encoded,
                        heldout_index=[], seq_len=16, pad_id=0, train_on_prompt=False, packing=False)
    with pytest.raises(BenchError) as info:
        _check_supervision(prepared, limit_pct=20.0)
    message = str(info.value)
    assert "\n" not in message
    assert "1 of 4 examples (25.0%) lose every supervised token at seq_len 16 (limit 20%)" in message
    assert "use a longer seq_len: 24 keeps 99% of examples whole (the longest has 19 tokens)" in message
    _check_supervision(prepared, limit_pct=25.0)  # at the limit: passes


def test_packing_fills_rows_with_whole_examples(tok, tmp_path):
    rows = [{"prompt": words(n), "completion": " two"} for n in (3, 5, 7, 2, 9, 4)]
    path = jsonl(tmp_path / "p.jsonl", rows)
    packed = prepare(tokenizer=tok, source=path, seq_len=16, heldout=0, packing=True)
    plain = prepare(tokenizer=tok, source=path, seq_len=16, heldout=0)
    batches = packed.train_batches(seed=3, steps=2, grad_accum=1, batch_size=2)
    assert [tuple(b[k].shape) for b in batches for k in ("input_ids", "attention_mask", "labels")] == [(2, 16)] * 6
    # the packed rows are the examples in the seed's order, whole, each starting where the last ended
    stream = [ex for b in plain.train_batches(seed=3, steps=12, grad_accum=1, batch_size=1) for ex in rows_of(b)]
    position = 0
    for batch in batches:
        for ids, labels in rows_of(batch):
            offset = 0
            while offset < len(ids):
                ex_ids, ex_labels = stream[position]
                assert ids[offset:offset + len(ex_ids)] == ex_ids and labels[offset:offset + len(ex_ids)] == ex_labels
                offset, position = offset + len(ex_ids), position + 1
            assert offset == len(ids) and len(ids) + len(stream[position][0]) > 16  # the next one did not fit
    assert packed.info["packing"] is True and plain.info["fingerprint"] == packed.info["fingerprint"]


def test_bad_arguments_are_one_line(tok, tmp_path):
    path = jsonl(tmp_path / "t.jsonl", [{"text": "a"}, {"text": "b"}])
    for kwargs, expected in [({"seq_len": 1}, "seq_len 1 is not valid"),
                             ({"heldout": 2}, "heldout 2 leaves no training"),
                             ({"max_unsupervised_pct": 101}, "max_unsupervised_pct 101")]:
        with pytest.raises(BenchError, match=expected):
            prepare(tokenizer=tok, source=path, **{"seq_len": 8, "heldout": 0, **kwargs})
