"""`run_bench.py plan --memory 24GB [--models ...]`: what fits, with predicted peak and headroom;
`--frontier`: the largest batch per sequence length and the longest sequence at batch 1.

Reads configs only; never imports torch. Prints a table (or `--json`) and, without --frontier,
one verdict line per model: can it be fine-tuned in this much memory, and with what.
"""

import json

from bench.method_table import TRAINED
from bench.plan import activations, grid as fit, frontier, dtype_bytes as precision, presets
from bench.plan.options import DEVICES, OFFLOADS
from bench.plan.terms import OPTIMIZERS
from bench.results.schema import METHODS
from bench.util.errors import BenchError
from bench.util.units import gib, parse_size

DEFAULT_MODELS = ("smollm2-135m", "llama-3-8b", "llama-2-70b")
CHECKPOINTING = {"on": (True,), "off": (False,), "both": (False, True)}
SWITCHES = (("--packing", "packed sequences: no padding, no attention mask"),
            ("--compile", "torch.compile: fused RMSNorm and SiLU, log-softmax recomputed in the loss"),
            ("--optimizer-in-backward", "step each parameter in its gradient hook (torchtune)"),
            ("--activation-offload", "move saved activations to CPU as they are made"),
            ("--keep-logits", "the training loop holds the model output (logits) through backward"),
            ("--kbit-upcast", "price peft's fp32 upcast of embeddings, norms and lm_head for qlora/lora8"))


def add_parser(subparsers):
    p = subparsers.add_parser("plan", help="predict training memory per method and show what fits",
                              description=__doc__.splitlines()[0])
    p.add_argument("--memory", required=True, help="memory per device, e.g. 24GB, 80GiB")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                   help=f"presets ({', '.join(presets.preset_names())}) or config.json paths")
    p.add_argument("--methods", nargs="+", default=list(TRAINED), help=" ".join(METHODS))
    p.add_argument("--seq-len", nargs="+", type=int, default=None,
                   help=f"default 512 2048; with --frontier {' '.join(map(str, frontier.SEQ_LENS))}")
    p.add_argument("--batch-size", nargs="+", type=int, default=[1, 4])
    p.add_argument("--grad-checkpointing", choices=sorted(CHECKPOINTING), default="both")
    p.add_argument("--optimizer", default="adamw_torch", help=" ".join(OPTIMIZERS))
    p.add_argument("--device", default="cuda", help=" ".join(DEVICES))
    p.add_argument("--precision", default=None, help=f"{' | '.join(precision.PUBLIC)} (default: bf16-true on "
                   "cuda, fp32 on cpu)")
    p.add_argument("--compute-dtype", default=None, help="older name: float32 = fp32, bfloat16 = bf16-true")
    p.add_argument("--gpus", type=int, default=1, help="FSDP over N GPUs: shards weights, grads, optimizer")
    p.add_argument("--offload", default="none", help=" ".join(OFFLOADS))
    p.add_argument("--fsdp-root", default="whole", help="whole: embeddings and lm_head in the root unit (PEFT, "
                   "accelerate, Answer.AI) | split: units of their own (torchtune's custom_sharded_layers)")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--lora-dropout", type=float, default=0.0)
    p.add_argument("--target-modules", nargs="+", default=["all-linear"],
                   help="all-linear or module names (q_proj k_proj v_proj o_proj gate_proj up_proj down_proj)")
    p.add_argument("--adapter-dtype", default="float32", help="float32 (peft) or bfloat16 (torchtune)")
    p.add_argument("--loss", default="standard", help=" | ".join(activations.LOSSES))
    for flag, text in SWITCHES:
        p.add_argument(flag, action="store_true", help=text)
    p.add_argument("--frontier", action="store_true", help="largest batch per sequence length instead of the grid")
    p.add_argument("--only-fits", action="store_true", help="show only rows that fit")
    p.add_argument("--json", action="store_true", help="machine-readable rows and verdicts")
    p.set_defaults(func=run)


def _options(args) -> dict:
    targets = args.target_modules[0] if args.target_modules == ["all-linear"] else args.target_modules
    return dict(optimizer=args.optimizer, device=args.device, precision=args.precision,
                compute_dtype=args.compute_dtype, gpus=args.gpus, offload=args.offload, lora_r=args.lora_r,
                lora_dropout=args.lora_dropout, target_modules=targets, adapter_dtype=args.adapter_dtype,
                loss=args.loss, packing=args.packing, compile=args.compile,
                optimizer_in_backward=args.optimizer_in_backward, activation_offload=args.activation_offload,
                kbit_upcast=args.kbit_upcast, keep_logits=args.keep_logits, fsdp_root=args.fsdp_root)


def run(args) -> int:
    memory = parse_size(args.memory)
    seq_lens = args.seq_len or list(frontier.SEQ_LENS if args.frontier else (512, 2048))
    for name, values in (("sequence length", seq_lens), ("batch size", args.batch_size)):
        bad = [v for v in values if v <= 0]
        if bad:
            raise BenchError(f"{name} must be positive, got {bad[0]}")
    for m in args.methods:
        if m not in METHODS:
            raise BenchError(f"unknown method {m!r}; valid choices: {', '.join(METHODS)}")
    models = [presets.load(m) for m in args.models]
    options = _options(args)
    if args.frontier:
        return _frontier(args, models=models, memory=memory, seq_lens=seq_lens, options=options)
    rows = fit.grid(models=models, methods=args.methods, seq_lens=seq_lens, batch_sizes=args.batch_size,
                    checkpointing=CHECKPOINTING[args.grad_checkpointing], memory_bytes=memory, options=options)
    verdicts = [fit.verdict(label=label, config=config, memory_bytes=memory, options=options)
                for label, config in models]
    if args.only_fits:
        rows = [r for r in rows if r["fits"]]
    if args.json:
        print(json.dumps({"rows": rows, "verdicts": verdicts}, indent=1))
    else:
        print(render(rows, memory_bytes=memory, device=args.device, gpus=args.gpus))
        print("\n".join(verdicts))
    return 0


def _frontier(args, *, models, memory, seq_lens, options) -> int:
    methods = [m for m in args.methods if m in TRAINED]
    rows = []
    for label, config in models:
        frontier.check_weights_fit(label=label, config=config, methods=methods, memory_bytes=memory, options=options)
        for method in methods:
            for ckpt in CHECKPOINTING[args.grad_checkpointing]:
                rows.append(frontier.row(label=label, config=config, method=method, memory_bytes=memory,
                                         seq_lens=seq_lens, options={**options, "grad_checkpointing": ckpt}))
    print(json.dumps({"frontier": rows}, indent=1) if args.json else frontier.render(rows, memory_bytes=memory))
    return 0


def render(rows, *, memory_bytes, device, gpus) -> str:
    """A readable table: sizes in GiB (as the rest of the console and the charts), largest term named."""
    import pandas as pd

    if not rows:
        return "no configuration fits"
    table = pd.DataFrame([{
        "model": r["model"], "method": r["method"], "seq": r["seq_len"], "batch": r["batch_size"],
        "ckpt": "on" if r["grad_checkpointing"] else "off",
        "predicted_GiB": round(gib(r["predicted_bytes"]), 2),
        "headroom_GiB": round(gib(r["headroom_bytes"]), 2),
        "fits": "yes" if r["fits"] else "no",
        "largest_term": max(r["terms"], key=r["terms"].get),
    } for r in rows])
    where = f"{gpus} x {device}" if gpus > 1 else device
    return f"memory per device: {gib(memory_bytes):.1f} GiB ({where})\n" + table.to_string(index=False)
