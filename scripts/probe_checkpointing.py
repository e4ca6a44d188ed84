"""What activation checkpointing and a chunked loss keep alive in one LoRA step, measured on the CPU
beside the planner's terms for the same configuration (docs/plan.md, "Checkpointing, measured").

    nice -n 10 .venv/bin/python scripts/probe_checkpointing.py --model shape:llama-3.2-1b --seq-len 512

One packed row (batch 1, no padding, no attention mask) of random token ids, the model in bf16
with peft LoRA r=8 on every linear (fp32 adapters, no dropout): the harness's LoRA. Four cases,
checkpointing off/on (transformers' non-reentrant checkpoint, as bench.training.methods enables it) x the
loss: `standard` (HF's ForCausalLMLoss, the output dropped as the harness does) and `chunked`
(torchtune's CEWithChunkedOutputLoss, eager: lm_head applied to 8 sequence chunks, each chunk
upcast to fp32 on its own; the logits list dropped before backward as torchtune's recipe does).
Each case measures in one step:
  saved      the unique storages autograd saves in forward and loss (bench.measure.saved), which
             for checkpointed layers are the layers' inputs only
  lm_head    the live peak while lm_head makes the logits (on this CPU with a transient copy of its
             weight, which CUDA does not make: measured apart, `cpu_weight_copy_bytes`)
  loss fwd   the live peak while the loss runs (forward of the loss)
  bwd start  live bytes when backward begins (logits dropped)
  loss bwd   the live peak in backward before the last decoder layer's gradient starts
  layers     the live peak from there to the end of backward (recompute with checkpointing)
all above what was allocated before the step (bench.measure.live: the profiler's allocator events).
Predicted: the planner's terms (bench.plan.activations) for the same configuration; `--json` prints
every figure. Nothing is fitted.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHUNKS = 8  # torchtune's default num_output_chunks


def predicted(config: dict, *, tokens: int, ckpt: bool, loss: str) -> dict:
    """The planner's figures for one case, in bytes (LoRA r=8 all-linear, fp32 adapters, bf16)."""
    from bench.plan import activations as A, params, dtype_bytes as precision
    from bench.plan.predict import target_names

    p = precision.dtypes("bf16-true", kbit_upcast=False, adapter_dtype="float32")
    targets = target_names(config, "all-linear")
    out_features = {name: out for name, _, out, _ in params.linears(config)}
    layer = A.layer_bytes(config, full=False, targets=targets, p=p, dropout=False, lora_r=8,
                          out_features=out_features, padded_seq=0, seq_len=tokens)
    stack = dict(tokens=tokens, layer=layer, p=p, full=False, checkpointing=ckpt)
    kept = A.stack_bytes(config, **stack, recomputing=False)
    per = tokens * config["vocab_size"]
    logits = A.logits_bytes(config, tokens=tokens, logits_dtype=2, loss=loss)
    out = {"saved": kept + 4 * per,  # + the fp32 log-softmax that cross-entropy saves (every chunk's)
           "loss_fwd": kept + A.loss_forward_bytes(config, tokens=tokens, logits_dtype=2, loss=loss),
           "bwd_start": kept + 4 * per, "loss_bwd": kept + logits,
           "layer": tokens * layer, "kept": kept}
    if ckpt:
        out["layers"] = A.stack_bytes(config, **stack, recomputing=True) + tokens * config["hidden_size"] * 2
    else:
        out["layers"] = kept + tokens * config["hidden_size"] * 2  # the gradient arriving at the last layer
    return out


def chunked_logits(hidden, head) -> list:
    """The model's output under torchtune's chunked loss: lm_head applied to 8 sequence chunks."""
    return [head(chunk) for chunk in hidden.tensor_split(CHUNKS, dim=1)]


def chunked_loss(logits: list, labels):
    """torchtune's CEWithChunkedOutputLoss: each chunk's cross-entropy on its own fp32 upcast,
    summed, over the supervised tokens; labels shifted by one, the last position ignored (as
    torchtune's recipe does)."""
    import torch
    import torch.nn.functional as F

    shifted = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], -100)], dim=1)
    targets = shifted.tensor_split(CHUNKS, dim=1)
    total = sum(F.cross_entropy(lg.flatten(0, 1).float(), t.flatten(), ignore_index=-100, reduction="sum")
                for lg, t in zip(logits, targets))
    return total / (shifted != -100).sum()


def step(model, ids, *, loss: str) -> dict:
    """One forward, loss and backward, measured; gradients set to None after. lm_head runs in a
    phase of its own: on the CPU a bf16 matmul's x @ W.T reorders a copy of W (oneDNN) for the
    call, which for lm_head is the size of the embedding, and CUDA does not do that."""
    from bench.measure.live import LiveBytes
    from bench.measure.saved import SavedTensors

    causal = model.base_model.model
    last = causal.model.layers[-1]
    probe, live = SavedTensors(model), LiveBytes()
    marks = []

    def entering_layers(module, grad_output):  # the gradient reaches the last decoder layer
        if not marks:
            marks.append(live.phase("layers"))
            marks[0].__enter__()

    handle = last.register_full_backward_pre_hook(entering_layers)
    try:
        with live.track(), probe.probe():
            with live.phase("forward"):
                hidden = causal.model(input_ids=ids, use_cache=False).last_hidden_state
            with live.phase("lm_head"):  # the output the training loop gets: dropped after the loss
                logits = causal.lm_head(hidden) if loss == "standard" else chunked_logits(hidden, causal.lm_head)
                del hidden
            with live.phase("loss fwd"):
                if loss == "standard":  # HF's ForCausalLMLoss, as the model's forward calls it
                    value = causal.loss_function(logits=logits, labels=ids, vocab_size=causal.config.vocab_size)
                else:
                    value = chunked_loss(logits, ids)
                del logits
            with live.phase("backward"):
                value.backward()
            if marks:
                marks[0].__exit__(None, None, None)
    finally:
        handle.remove()
    model.zero_grad(set_to_none=True)
    layers_start = next(start for name, start, _ in live.phases if name == "layers")
    bwd_start, bwd_end = next((s, e) for name, s, e in live.phases if name == "backward")
    return {"saved": probe.bytes(), "lm_head": live.peak("lm_head"), "loss_fwd": live.peak("loss fwd"),
            "bwd_start": live.at(bwd_start), "loss_bwd": live.peak_span(bwd_start, layers_start),
            "layers": live.peak_span(layers_start, bwd_end), "peak": live.peak(),
            "saved_by_shape": {f"{s} {d}": n for (s, d), n in probe.by_shape().items()}}


def weight_copy(linear, rows: int, *, chunked: bool) -> int:
    """Live bytes one bf16 x @ W.T with `rows` tokens adds on this CPU beyond its output. On the
    machine that measured docs/plan.md the CPU kernel copies W (about W's bytes) when x is a slice
    of a longer sequence, as a loss chunk is, and not when x is a tensor of its own; CUDA's matmul
    reads W in place."""
    import torch

    from bench.measure.live import LiveBytes

    live = LiveBytes()
    x = torch.zeros(1, rows * (CHUNKS if chunked else 1), linear.in_features, dtype=linear.weight.dtype,
                    requires_grad=True)
    x = x.tensor_split(CHUNKS, dim=1)[0] if chunked else x
    with live.track():
        out = linear(x)
    return live.peak() - out.numel() * out.element_size()


def load(name: str):
    import torch
    from peft import LoraConfig, get_peft_model

    from bench.models.resolve import resolve
    from bench.models.shape_load import load_shape

    path = resolve(name)
    if (Path(path) / "model.safetensors.index.json").is_file():  # a shape model: one layer at a time
        model = load_shape(path, dtype=torch.bfloat16)
    else:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16)
    config = json.loads((Path(path) / "config.json").read_text())
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    return model.train(), config


def set_checkpointing(model, on: bool) -> None:
    causal = model.base_model.model
    if on:  # as bench.training.methods does for LoRA
        causal.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        causal.enable_input_require_grads()
    else:
        causal.gradient_checkpointing_disable()
        causal.disable_input_require_grads()


def main(argv=None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="shape:llama-3.2-1b")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from bench.plan import presets

    model, raw = load(args.model)
    config = presets.validate(raw)
    ids = torch.randint(3, min(config["vocab_size"], 49152), (1, args.seq_len),
                        generator=torch.Generator().manual_seed(0))
    causal = model.base_model.model
    copies = {"lm_head_chunk": weight_copy(causal.lm_head, -(-args.seq_len // CHUNKS), chunked=True),
              "lm_head_all": weight_copy(causal.lm_head, args.seq_len, chunked=False)}
    rows = []
    for ckpt in (False, True):
        set_checkpointing(model, ckpt)
        for loss in ("standard", "chunked"):
            measured = step(model, ids, loss=loss)
            rows.append({"ckpt": ckpt, "loss": loss, "tokens": args.seq_len, "measured": measured,
                         "predicted": predicted(config, tokens=args.seq_len, ckpt=ckpt, loss=loss)})
    record = {"model": args.model, "cpu_weight_copy_bytes": copies, "rows": rows}
    if args.json:
        print(json.dumps(record, indent=1))
    else:
        print(table([record]))
        print(f"lm_head weight copied by this CPU bf16 matmul: {copies['lm_head_chunk'] / 2**20:,.0f} MiB per chunk, "
              f"{copies['lm_head_all'] / 2**20:,.0f} MiB on all tokens at once (not on CUDA)")
    return 0


def table(records: list) -> str:
    """The docs/plan.md table: each record's rows (`--json` output), measured against the planner's
    terms recomputed with the code as it is now (so a changed term shows in the docs' test). MiB."""
    from bench.plan import presets

    mib, keys = 2**20, ("saved", "loss_fwd", "loss_bwd", "layers")
    lines = ["| tokens | checkpointing | loss | saved | loss forward | loss backward | layers | step peak |",
             "|---|---|---|---|---|---|---|---|"]
    for record in sorted(records, key=lambda r: r["rows"][0]["tokens"]):
        config = presets.load(record["model"].removeprefix("shape:"))[1]
        for row in record["rows"]:
            m = row["measured"]
            p = predicted(config, tokens=row["tokens"], ckpt=row["ckpt"], loss=row["loss"])
            pairs = [(m[k], p[k]) for k in keys] + [(max(m[k] for k in keys[1:]), max(p[k] for k in keys[1:]))]
            cells = [f"{a / mib:,.0f} / {b / mib:,.0f} ({100 * (b - a) / a:+.1f}%)" for a, b in pairs]
            case = f"| {row['tokens']} | {'on' if row['ckpt'] else 'off'} | {row['loss']} | "
            lines.append(case + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
