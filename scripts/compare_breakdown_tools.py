"""Which torch tool attributes a training step's memory better: the profiler's memory timeline
(what ftbench uses) or torch.distributed._tools.mem_tracker.MemTracker? docs/breakdown.md quotes
this script's output.

    .venv/bin/python scripts/compare_breakdown_tools.py --model smollm2-135m --methods full lora

Per method: train 2 steps (AdamW state exists), then one step under each tool on the same batch,
at learning rate 0 (bench.measure.breakdown). Prints each tool's bytes per category at its peak,
or the one-line error when the tool cannot run on that model.
"""

import argparse
import json

import torch


def build(model_name: str, method: str, *, batch: int, seq: int):
    from transformers import AutoTokenizer

    from bench import data
    from bench.training import loop as train, methods, precision
    from bench.run.matrix import build_matrix
    from bench.measure.timer import StepTimer
    from bench.run.profile import load_profile

    settings = load_profile("smoke", overrides={"run": {"models": [model_name], "methods": [method]}})
    spec = precision.apply(dict(build_matrix(settings)[0], device="cpu"), precision.FIXED["fp32"])
    model = methods.build(spec)
    tokenizer = AutoTokenizer.from_pretrained(spec["model_path"])
    batches = data.batches(tokenizer, seed=0, steps=3, grad_accum=1, batch_size=batch, seq_len=seq)
    optimizer = methods.make_optimizer(model, spec)

    class Constant:
        def step(self):
            pass

    train.train(model, batches[:2], optimizer=optimizer, scheduler=Constant(), grad_accum=1, device="cpu",
                timer=StepTimer("cpu"))
    return model, optimizer, batches[2]


def with_profiler(model, optimizer, batch) -> dict:
    from bench.training import precision
    from bench.measure import breakdown

    got = breakdown.measure(model=model, micro_batches=[batch], optimizer=optimizer, policy=precision.FIXED["fp32"],
                            device="cpu", measured_peak_bytes=1)
    return got if "error" in got else {"categories": got["categories"], "instant": got["instant"],
                                       "tool_max_bytes": got["tool_max_bytes"]}


def with_mem_tracker(model, optimizer, batch) -> dict:
    from torch.distributed._tools.mem_tracker import MemTracker

    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}
    lrs = [g["lr"] for g in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] = 0.0
    tracker = MemTracker()
    try:
        tracker.track_external(model, optimizer, inputs)
        with tracker:
            model(**inputs).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    except Exception as exc:
        optimizer.zero_grad(set_to_none=True)
        return {"error": f"{exc.__class__.__name__}: {exc}"}
    finally:
        for group, lr in zip(optimizer.param_groups, lrs):
            group["lr"] = lr
    (snapshot,) = tracker.get_tracker_snapshot("peak").values()
    return {"categories": {str(getattr(k, "value", k)): v for k, v in snapshot.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--methods", nargs="+", default=["full", "lora"])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128)
    args = parser.parse_args()
    for method in args.methods:
        model, optimizer, batch = build(args.model, method, batch=args.batch_size, seq=args.seq_len)
        out = {"model": args.model, "method": method, "batch": args.batch_size, "seq_len": args.seq_len,
               "torch": torch.__version__, "mem_tracker": with_mem_tracker(model, optimizer, batch),
               "profiler": with_profiler(model, optimizer, batch)}
        print(json.dumps(out, indent=1), flush=True)


if __name__ == "__main__":
    main()
