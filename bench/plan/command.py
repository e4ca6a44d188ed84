"""`run_bench.py plan --memory 24GB [--models ...]`: what fits, with predicted peak and headroom.

Reads configs only; never imports torch. Prints a table (or `--json` rows) and one verdict
line per model: can it be fine-tuned in this much memory, and with what.
"""

import json

from bench.errors import BenchError
from bench.plan import fit, presets
from bench.plan.predict import DEVICES, OFFLOADS, OPTIMIZERS
from bench.plan.terms import DTYPE_BYTES
from bench.schema import METHODS
from bench.units import parse_size

DEFAULT_MODELS = ("smollm2-135m", "llama-3-8b", "llama-2-70b")
CHECKPOINTING = {"on": (True,), "off": (False,), "both": (False, True)}


def add_parser(subparsers):
    p = subparsers.add_parser("plan", help="predict training memory per method and show what fits",
                              description=__doc__.splitlines()[0])
    p.add_argument("--memory", required=True, help="memory per device, e.g. 24GB, 80GiB")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                   help=f"presets ({', '.join(presets.preset_names())}) or config.json paths")
    p.add_argument("--methods", nargs="+", default=[m for m in METHODS if m != "base"], help=" ".join(METHODS))
    p.add_argument("--seq-len", nargs="+", type=int, default=[512, 2048])
    p.add_argument("--batch-size", nargs="+", type=int, default=[1, 4])
    p.add_argument("--grad-checkpointing", choices=sorted(CHECKPOINTING), default="both")
    p.add_argument("--optimizer", default="adamw_torch", help=" ".join(OPTIMIZERS))
    p.add_argument("--device", default="cuda", help=" ".join(DEVICES))
    p.add_argument("--compute-dtype", default=None, help="default: bfloat16 on cuda, float32 on cpu")
    p.add_argument("--gpus", type=int, default=1, help="FSDP over N GPUs: shards weights, grads, optimizer")
    p.add_argument("--offload", default="none", help=" ".join(OFFLOADS))
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--only-fits", action="store_true", help="show only rows that fit")
    p.add_argument("--json", action="store_true", help="machine-readable rows and verdicts")
    p.set_defaults(func=run)


def run(args) -> int:
    memory = parse_size(args.memory)
    for name, values in (("sequence length", args.seq_len), ("batch size", args.batch_size)):
        bad = [v for v in values if v <= 0]
        if bad:
            raise BenchError(f"{name} must be positive, got {bad[0]}")
    for m in args.methods:
        if m not in METHODS:
            raise BenchError(f"unknown method {m!r}; valid choices: {', '.join(METHODS)}")
    dtype = args.compute_dtype or ("float32" if args.device == "cpu" else "bfloat16")
    if dtype not in DTYPE_BYTES:
        raise BenchError(f"unknown compute dtype {dtype!r}; valid choices: {', '.join(DTYPE_BYTES)}")
    models = [presets.load(m) for m in args.models]
    common = dict(memory_bytes=memory, optimizer=args.optimizer, device=args.device,
                  compute_dtype=dtype, gpus=args.gpus)
    rows = fit.grid(models=models, methods=args.methods, seq_lens=args.seq_len,
                    batch_sizes=args.batch_size, checkpointing=CHECKPOINTING[args.grad_checkpointing],
                    offload=args.offload, lora_r=args.lora_r, **common)
    verdicts = [fit.verdict(label=label, config=config, **common) for label, config in models]
    if args.only_fits:
        rows = [r for r in rows if r["fits"]]
    if args.json:
        print(json.dumps({"rows": rows, "verdicts": verdicts}, indent=1))
    else:
        print(render(rows, memory_bytes=memory, device=args.device, gpus=args.gpus))
        print("\n".join(verdicts))
    return 0


def render(rows, *, memory_bytes, device, gpus) -> str:
    """A readable table: sizes in decimal GB (what GPUs are sold in), largest term named."""
    import pandas as pd

    if not rows:
        return "no configuration fits"
    table = pd.DataFrame([{
        "model": r["model"], "method": r["method"], "seq": r["seq_len"], "batch": r["batch_size"],
        "ckpt": "on" if r["grad_checkpointing"] else "off",
        "predicted_GB": round(r["predicted_bytes"] / 1e9, 2),
        "headroom_GB": round(r["headroom_bytes"] / 1e9, 2),
        "fits": "yes" if r["fits"] else "no",
        "largest_term": max(r["terms"], key=r["terms"].get),
    } for r in rows])
    where = f"{gpus} x {device}" if gpus > 1 else device
    return f"memory per device: {memory_bytes / 1e9:.1f} GB ({where})\n" + table.to_string(index=False)
