"""Training data: a built-in task or the user's own file, tokenised with completion-only labels.

    prepared = prepare(tokenizer=tok, source="arc-easy", seq_len=128)      # bench.data.prepared
    prepared.train_batches(seed=0, steps=10, grad_accum=1, batch_size=4)   # [{input_ids, attention_mask, labels}]
    prepared.heldout_batches(batch_size=8); prepared.heldout_ids; prepared.info   # the record's `data` block
    check(source=..., data_format=..., tokenizer_path=..., seq_len=...)    # driver pre-flight, no torch
    resolve(source)                                                        # built-in name or absolute path,
                                                                           # no I/O but a stat

Sources: `arc-easy`, `arc-challenge`, `openbookqa` (train splits; their test splits are scored
by bench.evaluate.targets), `mmlu-validation` (v1's data), or a JSONL / JSON / CSV / Parquet file in one
of the formats of bench.data.formats. Importing this package does not import torch.
"""

from bench.data.builtin import NAMES as BUILTINS
from bench.data.check import check
from bench.data.formats import FORMATS
from bench.data.prepared import HELDOUT_SEED, Prepared, prepare
from bench.data.sources import resolve

__all__ = ["BUILTINS", "FORMATS", "HELDOUT_SEED", "Prepared", "prepare", "check", "resolve", "batches"]


def batches(tokenizer, *, seed: int, steps: int, grad_accum: int, batch_size: int, seq_len: int) -> list:
    """v1's call, kept for callers not yet moved to `prepare`: MMLU validation, loss on every
    token (train_on_prompt), no held-out part, no supervision limit."""
    prepared = prepare(tokenizer=tokenizer, source="mmlu-validation", seq_len=seq_len, train_on_prompt=True,
                       heldout=0, max_unsupervised_pct=100.0)
    return prepared.train_batches(seed=seed, steps=steps, grad_accum=grad_accum, batch_size=batch_size)
