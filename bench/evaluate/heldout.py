"""Held-out loss: each held-out example's mean loss over its supervised tokens.

Cheap and far more sensitive than accuracy, and per example, so two methods can be compared
pairwise on the same examples. The loss is the one training minimises: logits shifted against
labels as Hugging Face's causal-LM loss does (position t predicts token t+1), cross-entropy in
float32, labels of -100 ignored. The model runs in eval mode (no dropout) under no_grad, and
gets its previous mode back afterwards.
"""

import contextlib
import math


def _autocast(device: str, dtype):
    import torch

    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=dtype)


def per_example_losses(model, batches, *, device: str = "cpu", autocast=None, on_batch=None) -> tuple:
    """(losses, tokens, mean): per-example mean losses in batch order (None for an example with no
    supervised token), the supervised token count, and the token-weighted mean over all of them.
    `on_batch(n)` hears of each batch's n examples as they are scored (bench.util.progress)."""
    import torch
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    losses, total, tokens = [], 0.0, 0
    try:
        with torch.no_grad():
            for batch in batches:
                ids, mask, labels = (batch[k].to(device) for k in ("input_ids", "attention_mask", "labels"))
                with _autocast(device, autocast):
                    logits = model(input_ids=ids, attention_mask=mask).logits
                shifted = labels[:, 1:]
                nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), shifted, ignore_index=-100,
                                      reduction="none")
                counts = (shifted != -100).sum(dim=1)
                sums = nll.sum(dim=1)
                for s, n in zip(sums.tolist(), counts.tolist()):
                    losses.append(s / n if n else None)
                    total, tokens = total + s, tokens + n
                if on_batch is not None:
                    on_batch(len(counts))
    finally:
        model.train(was_training)
    return losses, tokens, (total / tokens if tokens else math.nan)


def heldout_block(*, losses: list, tokens: int, mean: float, ids: list) -> dict:
    """The record's `heldout` object (null-safe: no NaN reaches the JSON)."""
    return {"loss": mean if math.isfinite(mean) else None, "n": len(losses), "tokens": tokens,
            "losses": losses, "ids": list(ids)}


def describe(block: dict) -> str:
    """One progress line for a `heldout` block; says so when no example kept a supervised token."""
    if block.get("loss") is None:
        return f"held-out loss not measured: none of the {block['n']} examples kept a supervised token"
    return f"held-out loss {block['loss']:.4f} over {block['n']} examples"
