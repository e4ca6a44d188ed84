"""The OOM frontier, predicted: per model and method, the largest batch that fits at each
sequence length, and the longest sequence that fits at batch 1.

Predicted memory grows with batch and with sequence length (every token-dependent term is
non-negative and linear or quadratic in them), so both searches bisect.
"""

from bench.plan import options as O, dtype_bytes as precision
from bench.plan.predict import estimate, needed_bytes, weight_terms
from bench.util.errors import BenchError
from bench.util.units import gib

SEQ_LENS = (256, 512, 1024, 2048, 4096, 8192)
MAX_BATCH = 4096
MAX_SEQ = 1 << 20


def _largest(fits, hi: int) -> int:
    """The largest n in [1, hi] with fits(n), or 0 if fits(1) is false (fits is monotone)."""
    if not fits(1):
        return 0
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def check_weights_fit(*, label: str, config: dict, methods, memory_bytes: int, options: dict) -> None:
    """Bad input: a budget below the model's weights alone (the smallest storage among the
    methods asked, per device) can hold no training step at all."""
    o = O.build({"seq_len": 1, "batch_size": 1, **options})
    p = precision.dtypes(o.policy(), kbit_upcast=o.kbit_upcast, adapter_dtype=o.adapter_dtype)
    sizes = {m: sum(weight_terms(config, method=m, p=p, double_quant=o.double_quant,
                                 base_bits=o.base_bits).values()) // o.gpus for m in methods}
    method = min(sizes, key=sizes.get)
    if o.offload != "all" and sizes[method] > memory_bytes:
        raise BenchError(f"--memory {gib(memory_bytes):.1f} GiB is below {label}'s weights alone "
                         f"({gib(sizes[method]):.1f} GiB per device with {method}); nothing can train in it")


def row(*, label: str, config: dict, method: str, memory_bytes: int, seq_lens, options: dict) -> dict:
    """One frontier row: {seq_len: largest batch (0 = none)} and the longest sequence at batch 1."""
    def fits(seq, batch):
        return needed_bytes(estimate(config=config, method=method, seq_len=seq, batch_size=batch,
                                     **options)) <= memory_bytes

    batches = {seq: _largest(lambda b, s=seq: fits(s, b), MAX_BATCH) for seq in seq_lens}
    longest = _largest(lambda s: fits(s, 1), MAX_SEQ)
    smallest = estimate(config=config, method=method, seq_len=min(seq_lens), batch_size=1, **options)
    return {"model": label, "method": method, "grad_checkpointing": options.get("grad_checkpointing", False),
            "memory_bytes": memory_bytes, "max_batch": batches, "longest_seq_at_batch_1": longest,
            "smallest_point_bytes": smallest["device_bytes"]}


def render(rows, *, memory_bytes: int) -> str:
    """A table: one line per model x method x checkpointing, largest batch per sequence length."""
    if not rows:
        return "no rows"
    seqs = list(rows[0]["max_batch"])
    head = ["model", "method", "ckpt"] + [f"b@{s}" for s in seqs] + ["seq@b1"]
    lines = [head]
    for r in rows:
        lines.append([r["model"], r["method"], "on" if r["grad_checkpointing"] else "off"]
                     + [str(r["max_batch"][s]) if r["max_batch"][s] else "-" for s in seqs]
                     + [str(r["longest_seq_at_batch_1"]) if r["longest_seq_at_batch_1"] else "-"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines)
    return (f"largest batch per sequence length, and longest sequence at batch 1, within "
            f"{gib(memory_bytes):.1f} GiB per device ('-' = nothing fits)\n{text}")
