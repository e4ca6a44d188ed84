"""Tokenised training data, split once into a fixed held-out part and a training pool.

- Cleaned first (bench.data.clean): duplicates removed (unless keep_duplicates) and examples equal
  to a test question of the target task dropped, before the held-out draw, so a held-out
  example never equals a training example nor a scored question.

- Held-out: `heldout` examples drawn with HELDOUT_SEED, a constant, never the run seed, so
  every method, seed and `base` is measured on the same examples; they never train.
- Training: the run seed shuffles the pool; steps x grad_accum x batch_size examples are drawn
  in that order, cycling when the pool is shorter.
- Every row is exactly seq_len tokens (right padding), so all methods see identical tensor
  shapes. An example longer than seq_len keeps its answer: the prompt is cut from the left,
  just enough to fit, but never past the token before the first supervised one; only an answer
  longer than the row is then cut on the right. Accounting covers train pool + held-out:
  `truncated` lost at least one token, `prompt_cut` lost prompt tokens on the left,
  `answer_cut` lost supervised tokens, `unsupervised` kept no supervised token at all (only an
  example with none to begin with). More unsupervised than max_unsupervised_pct fails with the
  seq_len that would keep 99% of examples whole.
- packing=True fills each training row with whole examples (each truncated first as above,
  eos-separated) until the next one does not fit. Attention is NOT reset at example
  boundaries: a packed example attends to the ones before it in its row. Held-out rows are
  never packed (one example per row, so each gets its own loss).
"""

import hashlib
import json
import math
import random

from bench.data import clean, files, sources
from bench.data.encode import IGNORE, encode_all, split_differs
from bench.util.errors import BenchError

HELDOUT_SEED = 1234  # fixed on purpose: the held-out split must not move with the run seed


def _positive_int(name: str, value, *, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise BenchError(f"{name} {value!r} is not valid; use an integer >= {minimum}")
    return value


def fingerprint(examples: list) -> str:
    """sha256 of the examples as canonical JSON lines, in the order given."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update((json.dumps(example, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n")
                      .encode("utf-8"))
    return digest.hexdigest()


def window_start(encoded, seq_len: int) -> int:
    """Where an example's row starts: 0 when it fits; else cut the prompt from the left just enough
    to fit, but keep the token before the first supervised one (it predicts that one)."""
    first = encoded.first_supervised()
    if len(encoded.ids) <= seq_len or first is None:
        return 0
    return max(0, min(len(encoded.ids) - seq_len, first - 1))


def _kept_supervised(encoded, seq_len: int) -> tuple:
    """(supervised tokens in the example, supervised tokens in its row): labels at position >= 1."""
    start = window_start(encoded, seq_len)
    counted = [i for i, label in enumerate(encoded.labels) if label != IGNORE and i >= 1]
    return len(counted), sum(1 for i in counted if start < i < start + seq_len)


def whole_len(lengths: list, share: float = 0.99) -> int:
    """The smallest multiple of 8 that keeps `share` of examples untruncated."""
    ordered = sorted(lengths)
    needed = ordered[max(0, math.ceil(share * len(ordered)) - 1)]
    return 8 * math.ceil(needed / 8)


class Prepared:
    """The examples of one `data` setting, tokenised for one tokenizer and seq_len."""

    def __init__(self, *, source, fmt, examples, encoded, heldout_index, seq_len, pad_id, train_on_prompt, packing,
                 cleaned=None, split_differs=None):
        held = set(heldout_index)
        self._examples, self._encoded = examples, encoded
        self._heldout, self._train = list(heldout_index), [i for i in range(len(examples)) if i not in held]
        self.seq_len, self.pad_id, self.packing = seq_len, pad_id, packing
        cut = [e for e in encoded if len(e.ids) > seq_len]
        kept = [_kept_supervised(e, seq_len) for e in encoded]
        self.truncated = len(cut)
        self.unsupervised = sum(1 for _, inside in kept if inside == 0)
        self.info = {
            "source": source, "format": fmt,
            "fingerprint": fingerprint([examples[i] for i in self._heldout + self._train]),
            "train_examples": len(self._train), "heldout_examples": len(self._heldout),
            "truncated_examples": self.truncated,
            "prompt_cut_examples": sum(1 for e in cut if window_start(e, seq_len) > 0),
            "answer_cut_examples": sum(1 for total, inside in kept if 0 < inside < total),
            "unsupervised_examples": self.unsupervised,
            **(cleaned or {"duplicates_removed": None, "test_overlap_removed": None}),
            "split_tokenisation_differs": split_differs,
            "train_on_prompt": train_on_prompt, "packing": packing, "seq_len": seq_len,
        }

    @property
    def heldout_ids(self) -> list:
        return [self._examples[i]["id"] for i in self._heldout]

    def lengths(self) -> list:
        """Full token counts (before truncation) of every example, train pool and held-out."""
        return [len(e.ids) for e in self._encoded]

    def _row(self, index: int) -> tuple:
        e = self._encoded[index]
        start = window_start(e, self.seq_len)
        return list(e.ids[start:start + self.seq_len]), list(e.labels[start:start + self.seq_len])

    def _tensors(self, rows: list) -> dict:
        import torch

        ids = torch.full((len(rows), self.seq_len), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), self.seq_len), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), self.seq_len), dtype=torch.long)
        for r, (row_ids, row_labels) in enumerate(rows):
            n = len(row_ids)
            ids[r, :n], labels[r, :n], mask[r, :n] = torch.tensor(row_ids), torch.tensor(row_labels), 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def train_order(self, seed: int) -> list:
        """Indices of the training pool in the run seed's order."""
        order = list(self._train)
        random.Random(seed).shuffle(order)
        return order

    def _packed_rows(self, order: list, needed: int) -> list:
        rows, ids, labels = [], [], []
        position = 0
        while len(rows) < needed:
            row_ids, row_labels = self._row(order[position % len(order)])
            position += 1
            if ids and len(ids) + len(row_ids) > self.seq_len:
                rows.append((ids, labels))
                ids, labels = [], []
            ids, labels = ids + row_ids, labels + row_labels
        return rows

    def train_batches(self, *, seed: int, steps: int, grad_accum: int, batch_size: int) -> list:
        """steps x grad_accum micro-batches {input_ids, attention_mask, labels}, each [batch_size, seq_len]."""
        for name, value in (("steps", steps), ("grad_accum", grad_accum), ("batch_size", batch_size)):
            _positive_int(name, value, minimum=1)
        order, needed = self.train_order(seed), steps * grad_accum * batch_size
        if self.packing:
            rows = self._packed_rows(order, needed)
        else:
            rows = [self._row(order[i % len(order)]) for i in range(needed)]
        return [self._tensors(rows[s:s + batch_size]) for s in range(0, needed, batch_size)]

    def heldout_batches(self, *, batch_size: int) -> list:
        """The held-out examples in held-out order, one per row, padded to seq_len."""
        _positive_int("batch_size", batch_size, minimum=1)
        rows = [self._row(i) for i in self._heldout]
        return [self._tensors(rows[s:s + batch_size]) for s in range(0, len(rows), batch_size)]


def _split_differs(tokenizer, examples: list, fmt: str):
    """For prompt-completion data, how many examples tokenise differently split than joined
    (bench.data.encode.split_differs); None for text and chat, which are not split that way."""
    if sources.normal_form(fmt) != "prompt-completion":
        return None
    return split_differs(tokenizer, [e["prompt"] for e in examples], [e["completion"] for e in examples])


def _check_supervision(prepared: Prepared, *, limit_pct: float) -> None:
    total = len(prepared.lengths())
    share = 100.0 * prepared.unsupervised / total
    if share > limit_pct:
        lengths = prepared.lengths()
        raise BenchError(f"{prepared.unsupervised} of {total} examples ({share:.1f}%) lose every supervised token "
                         f"at seq_len {prepared.seq_len} (limit {limit_pct:g}%); use a longer seq_len: "
                         f"{whole_len(lengths)} keeps 99% of examples whole (the longest has {max(lengths)} tokens)")


def prepare(*, tokenizer, source: str, data_format: str = "auto", seq_len: int, train_on_prompt: bool = False,
            packing: bool = False, heldout: int = 64, max_unsupervised_pct: float = 10.0,
            keep_duplicates: bool = False, skip_bad_rows: bool = False) -> Prepared:
    """Load, clean (bench.data.clean: duplicates, unless kept, and the target task's test questions
    out), tokenise and split `source`; BenchError (one line) for anything unusable. With
    skip_bad_rows, rows that cannot be read or do not fit the format are left out and counted
    in info["skipped_rows"] (absent without it)."""
    _positive_int("seq_len", seq_len, minimum=2)
    _positive_int("heldout", heldout, minimum=0)
    if not isinstance(max_unsupervised_pct, (int, float)) or not 0 <= max_unsupervised_pct <= 100:
        raise BenchError(f"max_unsupervised_pct {max_unsupervised_pct!r} is not valid; use a number from 0 to 100")
    resolved, fmt, examples, skipped = sources.load(source, data_format=data_format, skip_bad_rows=skip_bad_rows)
    examples, cleaned = clean.clean(examples, tested=sources.tested(resolved), keep_duplicates=keep_duplicates)
    if heldout >= len(examples):
        raise BenchError(f"heldout {heldout} leaves no training examples: {resolved} has {len(examples)}; "
                         f"use heldout < {len(examples)}")
    encoded = encode_all(tokenizer, examples, fmt=sources.normal_form(fmt), train_on_prompt=train_on_prompt,
                         where=f"data {resolved}")
    if not any(e.ids for e in encoded):
        raise BenchError(f"data {resolved}: every example tokenises to nothing; give non-empty examples")
    heldout_index = sorted(random.Random(HELDOUT_SEED).sample(range(len(examples)), heldout))
    pad_id = next((t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None), 0)
    prepared = Prepared(source=resolved, fmt=fmt, examples=examples, encoded=encoded, heldout_index=heldout_index,
                        seq_len=seq_len, pad_id=pad_id, train_on_prompt=train_on_prompt, packing=packing,
                        cleaned=cleaned, split_differs=_split_differs(tokenizer, examples, fmt))
    if skip_bad_rows:
        prepared.info["skipped_rows"] = {"count": len(skipped), "reasons": files.problems_text(skipped) or None}
    _check_supervision(prepared, limit_pct=max_unsupervised_pct)
    return prepared
