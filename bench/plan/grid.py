"""The planner's grid: every method x sequence length x batch x checkpointing for each model,
with the predicted device peak, headroom and whether it fits; plus one verdict per model."""

import itertools

from bench.plan.predict import FSDP_HEADROOM, estimate, needed_bytes
from bench.util.units import gib_text

# Cheapest shape tried by the verdict: one sequence of 512 tokens, checkpointing on.
VERDICT_SHAPE = {"seq_len": 512, "batch_size": 1, "grad_checkpointing": True}


def grid(*, models, methods, seq_lens, batch_sizes, checkpointing, memory_bytes, options: dict) -> list:
    """One row per (model, method, seq_len, batch, checkpointing). `models` is [(label, config)];
    `options` are the other estimate() options, shared by every row. `predicted_bytes` is what
    must fit on the device (paged optimizer state and CUDA context included)."""
    rows = []
    for (label, config), method, seq_len, batch, ckpt in itertools.product(
            models, methods, seq_lens, batch_sizes, checkpointing):
        if method == "base" and ckpt:
            continue  # no backward, so checkpointing changes nothing
        est = estimate(config=config, method=method, seq_len=seq_len, batch_size=batch,
                       grad_checkpointing=ckpt, **options)
        predicted = est["device_bytes"]
        rows.append({
            "model": label, "method": method, "seq_len": seq_len, "batch_size": batch,
            "grad_checkpointing": ckpt, "predicted_bytes": predicted, "total_bytes": est["total_bytes"],
            "allocated_bytes": est["allocated_bytes"], "paged_bytes": est["paged_bytes"],
            "memory_bytes": memory_bytes, "headroom_bytes": memory_bytes - predicted,
            "headroom_required_bytes": est["headroom_bytes"],
            "fits": needed_bytes(est) <= memory_bytes, "peak_at": est["peak_at"], "terms": est["terms"],
            "precision": est["policy"], **options,
        })
    return rows


def verdict(*, label, config, memory_bytes, options: dict) -> str:
    """One line: can this model be fine-tuned in `memory_bytes` per device, and with what?
    Tries QLoRA at the cheapest shape, then the escape hatches in order of cost to quality/speed:
    two GPUs with FSDP-QLoRA, CPU offload of everything, and a 2-bit base."""
    gpus = options.get("gpus", 1)

    def need(**kw):
        return needed_bytes(estimate(config=config, method="qlora", **{**options, **VERDICT_SHAPE, **kw}))

    base = need()
    shape = "QLoRA (NF4+DQ, batch 1 x 512, checkpointing)"
    if base <= memory_bytes:
        return f"{label}: yes - {shape} needs {gib_text(base)} of {gib_text(memory_bytes)}"
    choices = [(f"FSDP-QLoRA over 2 GPUs, with {FSDP_HEADROOM:.0%} headroom", need(gpus=max(2, gpus * 2))),
               ("CPU offload of weights and optimizer (slow)", need(offload="all")),
               ("a 2-bit base (quality loss)", need(base_bits=2))]
    fitting = [f"{name} ({gib_text(n)} per GPU)" for name, n in choices if n <= memory_bytes]
    tail = "; fits with: " + ", ".join(fitting) if fitting else "; nothing tried fits"
    return f"{label}: no - {shape} needs {gib_text(base)} > {gib_text(memory_bytes)}{tail}"
