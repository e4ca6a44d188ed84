"""The child process: load -> train -> eval on one spec, each phase measured.

    python -m bench.worker RUN_DIR/spec.json

Writes RUN_DIR/result.json (atomically) and exits 0 when the run is ok, 1 when it failed
in a way it could record (error, oom). Anything worse (a signal, a hard crash) leaves no
result.json, and the launcher records it from the exit status.
"""

import json
import os
import sys
import time
import traceback
from pathlib import Path

from bench.atomic import write_atomic
from bench.record import now_iso, skeleton


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"[:500]


def classify(exc: BaseException) -> str:
    """'oom' for out-of-memory in any of its forms, else 'error'."""
    if isinstance(exc, MemoryError) or exc.__class__.__name__ == "OutOfMemoryError":
        return "oom"
    text = str(exc).lower()
    return "oom" if any(sign in text for sign in ("out of memory", "can't allocate memory", "cannot allocate memory")) \
        else "error"


PROGRESS = "@ftbench "  # the launcher relays lines with this prefix to the user
RESULT_WRITTEN = "@ftbench-result-written"  # the record is complete; the launcher may end a stuck exit


def say(message: str) -> None:
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the run
        print(f"{PROGRESS}{message}", flush=True)


def _die_with_torchrun() -> None:
    """torchrun starts each rank in its own session, out of reach of the launcher's killpg; the
    rank dies with torchrun instead (which dies with the launcher), so no rank is orphaned."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except OSError:
        return
    if os.getppid() == 1:  # torchrun already gone
        os._exit(1)


def run(spec: dict, run_dir: Path, record: dict) -> None:
    """Fill `record` in place; raise on failure (what was measured so far stays in it)."""
    import torch
    import transformers  # noqa: F401  (baseline = interpreter + the stack, before the model)
    import peft  # noqa: F401
    import bitsandbytes  # noqa: F401

    from bench import data, distributed, env, methods, precision, train
    from bench.measure import flops
    from bench.measure.memory import memory_tracker, peak_rss_bytes, release_memory, rss_bytes
    from bench.measure.params import count_params
    from bench.measure.timer import StepTimer, throughput

    transformers.logging.set_verbosity_error()
    transformers.set_seed(spec["seed"])
    device = precision.resolve_device(spec["device"])
    spec = dict(spec, device=device)
    policy, record["precision"] = precision.resolve(spec["precision"], device=device)
    spec = precision.apply(spec, policy)
    record["memory"]["device"] = device
    say(f"device {device}, precision {policy.name} ({record['precision']['reason']})")
    ranks = distributed.setup(spec)  # nproc > 1: this process is one rank of a torchrun group
    if device == "cuda" and spec.get("max_memory"):
        from bench.units import parse_size
        total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, parse_size(spec["max_memory"]) / total))
    record["env"] = env.capture()
    record["env"]["calibration"] = _calibration(ranks.place(spec)["device"], policy.compute_dtype)
    release_memory()
    record["memory"]["baseline_bytes"] = rss_bytes()
    record["memory"]["baseline_peak_bytes"] = peak_rss_bytes()
    tracker = memory_tracker(ranks.place(spec)["device"])  # cuda:LOCAL_RANK under torchrun
    if device == "cuda":
        record["memory"]["cuda_context_bytes"] = tracker.context_bytes()
        record["memory"]["nvml"] = tracker.nvml.where  # which physical GPU NVML read, and how it was found
    phases = record["memory"]
    with tracker.track("load") as figures:
        phases["load"] = figures
        model = ranks.build(spec)  # under FSDP, rank 0 alone reads the checkpoint (bench.fsdp_load)
        tokenizer = transformers.AutoTokenizer.from_pretrained(spec["model_path"])
        prepared = data.prepare(tokenizer=tokenizer, source=spec["data_source"], data_format=spec["data_format"],
                                seq_len=spec["seq_len"], train_on_prompt=spec["train_on_prompt"],
                                packing=spec["packing"], heldout=spec["heldout_examples"],
                                max_unsupervised_pct=spec["max_unsupervised_pct"],
                                keep_duplicates=spec.get("keep_duplicates", False))
        record["data"] = prepared.info
        batches = prepared.train_batches(seed=spec["seed"], steps=spec["steps"], grad_accum=spec["grad_accum"],
                                         batch_size=spec["batch_size"])
        record["params"] = count_params(model)  # before sharding: FSDP leaves each rank a part
        model, batches = ranks.wrap(model, spec), ranks.shard(batches)
    say(f"load: {figures['wall_s']:.1f} s, peak {figures['peak_bytes'] / 2**20:.0f} MiB, "
        f"{record['params']['trainable']:,} of {record['params']['total']:,} params trainable")

    timer = StepTimer(device)
    with tracker.track("train") as figures:
        phases["train"] = figures
        if spec["method"] != "base":
            optimizer = methods.make_optimizer(model, spec)
            scheduler = methods.make_scheduler(optimizer, spec)
            record["loss"] = train.train(model, batches, optimizer=optimizer, scheduler=scheduler, policy=policy,
                                         grad_accum=spec["grad_accum"], device=ranks.place(spec)["device"],
                                         timer=timer, ranks=ranks if ranks.size > 1 else None,
                                         on_step=lambda i, loss, s: say(f"train step {i}/{spec['steps']}: "
                                                                        f"loss {loss:.4f}, {s:.2f} s"))
    record["throughput"] = throughput(timer.times_s, timer.tokens, warmup_steps=spec["warmup_steps"])
    if record["throughput"]:
        record["throughput"].update(flops.figures(ranks.unwrap(model), seq_len=spec["seq_len"], world=ranks.size,
                                                  tokens_per_s=record["throughput"]["tokens_per_s"],
                                                  peak_gflops=record["env"]["calibration"].get("matmul_gflops")))
    if spec["method"] != "base":  # its own phase: the profiler's records must not touch the train peak
        with tracker.track("breakdown"):
            record["memory"]["breakdown"] = _breakdown(spec, record, model=model, batches=batches, optimizer=optimizer,
                                                       policy=policy, ranks=ranks)
        del optimizer, scheduler
    try:  # base trains nothing, and the planner models one device: no prediction for either
        record["estimate"] = _estimate(spec, record, policy) if spec["method"] != "base" and ranks.size == 1 else None
    except Exception as exc:  # a planner gap must not cost the measured run
        say(f"estimate unavailable: {one_line(exc)}")
    say(f"train: {figures['wall_s']:.1f} s, peak {figures['peak_bytes'] / 2**20:.0f} MiB")

    with tracker.track("eval") as figures, precision.autocast(policy, device):
        phases["eval"] = figures
        if not ranks.can_score():
            evaluate(ranks.unwrap(model), tokenizer, prepared, spec=spec, record=record, run_dir=run_dir)
    acc = record["mmlu"]["acc"] if record["mmlu"] else None
    record["memory"]["worker_peak_bytes"] = tracker.lifetime_peak_bytes()
    ranks.finish(record)  # rank 0: per-rank figures gathered, peaks = max over ranks
    if ranks.can_score() and ranks.writer:
        record["distributed"]["eval_skipped"] = ranks.can_score()
    say(f"eval: {figures['wall_s']:.1f} s, peak {figures['peak_bytes'] / 2**20:.0f} MiB"
        + (f", MMLU acc {100 * acc:.1f}%" if acc is not None else ""))


def evaluate(model, tokenizer, prepared, *, spec: dict, record: dict, run_dir: Path) -> None:
    """What the method bought, on the trained weights: held-out loss on the fixed held-out examples,
    the target task's test split and MMLU through lm-eval, each with per-example figures kept."""
    from bench.heldout import describe, heldout_block, per_example_losses

    batch_size = spec["eval_batch_size"] if isinstance(spec["eval_batch_size"], int) else 8
    if prepared.info["heldout_examples"]:
        losses, tokens, mean = per_example_losses(model, prepared.heldout_batches(batch_size=batch_size),
                                                  device=spec["device"])
        record["heldout"] = heldout_block(losses=losses, tokens=tokens, mean=mean, ids=prepared.heldout_ids)
        say(describe(record["heldout"]))
    if spec["target_task"]:
        from bench.targets import make_lm, score_task

        task, name = spec["target_task"], f"{spec['target_task']}_predictions.jsonl"
        block = score_task(lm=make_lm(model=model, tokenizer=tokenizer, batch_size=batch_size, device=spec["device"]),
                           task=task, limit=spec["target_limit"], predictions_path=run_dir / name)
        record["tasks"][task] = dict(block, role="target", predictions_file=f"runs/{run_dir.name}/{name}")
        say(f"{task}: acc {100 * block['acc']:.1f}% on {block['n']} questions")
    if spec.get("forget_tasks"):
        from bench.targets import score_suite

        suite = score_suite(model=model, tokenizer=tokenizer, batch_size=batch_size, device=spec["device"],
                            names=spec["forget_tasks"], limit=spec["forget_limit"], run_dir=run_dir)
        record["tasks"].update(suite)
        say("forgetting suite: " + ", ".join(f"{t} {100 * b['acc']:.1f}% on {b['n']}" for t, b in suite.items()))
    if spec["mmlu"]:
        from bench.mmlu import score

        scored = score(model=model, tokenizer=tokenizer, shots=spec["mmlu_shots"], limit=spec["mmlu_limit"],
                       batch_size=spec["eval_batch_size"], predictions_path=run_dir / "mmlu_predictions.jsonl",
                       tasks=spec["tasks"], device=spec["device"])
        record["mmlu"] = scored.get("mmlu")
        record["tasks"].update({name: dict(block, role="extra") for name, block in scored.get("tasks", {}).items()})
        if record["mmlu"]:
            record["mmlu"]["predictions_file"] = f"runs/{run_dir.name}/mmlu_predictions.jsonl"


def _breakdown(spec: dict, record: dict, *, model, batches, optimizer, policy, ranks) -> dict:
    """memory.breakdown: one profiled step on the last step's micro-batches, or why there is none."""
    from bench.measure import breakdown

    if not spec.get("breakdown", True):
        return {"error": "not measured: breakdown is off for this run"}
    if ranks.size > 1:
        return {"error": "not measured with nproc > 1: one rank's profile is not the run's breakdown"}
    train = record["memory"]["train"]
    measured = train["allocated_peak_bytes"] if spec["device"] == "cuda" else train["peak_bytes"]
    result = breakdown.measure(model=model, micro_batches=batches[-spec["grad_accum"]:], optimizer=optimizer,
                               policy=policy, device=spec["device"], measured_peak_bytes=measured,
                               baseline_bytes=record["memory"]["baseline_bytes"])
    say(f"breakdown: {result['error']}" if "error" in result else
        f"breakdown: {100 * (1 - result['unattributed_share']):.0f}% of the train peak attributed")
    return result


def _calibration(device: str, dtype: str) -> dict:
    """A fixed matmul benchmark in the same process, on the run's device and compute dtype: the
    gate normalises throughput by it."""
    from bench.gate.calibrate import measure_calibration

    return measure_calibration(device=device, dtype=dtype)


def _estimate(spec: dict, record: dict, policy) -> dict:
    """The planner's prediction for this very run, beside what was measured."""
    from bench.plan import estimate

    config = json.loads((Path(spec["model_path"]) / "config.json").read_text())
    predicted = estimate(config=config, method=spec["method"], seq_len=spec["seq_len"],
                         batch_size=spec["batch_size"], grad_checkpointing=spec["grad_checkpointing"],
                         optimizer=spec["optimizer"], precision=policy.name, kbit_upcast=False, device=spec["device"],
                         lora_r=spec["lora_r"], target_modules=spec["target_modules"], lora_dropout=spec["lora_dropout"],
                         packing=spec["packing"], baseline_bytes=record["memory"]["baseline_bytes"] if spec["device"] == "cpu" else None)
    if spec["device"] == "cpu" and spec.get("cpu_malloc_mmap_threshold") and "allocator" in predicted["terms"]:
        # the allocator term models glibc keeping freed blocks resident, which mmap'd blocks are not
        predicted["total_bytes"] -= predicted["terms"].pop("allocator")
        predicted.setdefault("notes", []).append("allocator retention term dropped: MALLOC_MMAP_THRESHOLD_ set")
    measured = record["memory"]["train"]["peak_bytes"]
    predicted["measured_bytes"] = measured
    predicted["error_pct"] = 100.0 * (predicted["total_bytes"] - measured) / measured
    return predicted


def _check(record: dict) -> None:
    """The record check: an ok record that breaks the schema (e.g. MFU above 100%) is an error."""
    from bench.schema import problems

    bad = problems(record)
    if bad:
        raise RuntimeError(f"record check failed: {'; '.join(bad)}")


def main(argv=None) -> int:
    if "TORCHELASTIC_RUN_ID" in os.environ:
        _die_with_torchrun()
    spec_path = Path((argv or sys.argv[1:])[0])
    run_dir = spec_path.parent
    spec = json.loads(spec_path.read_text())
    record = skeleton(spec)
    start = time.perf_counter()
    try:
        run(spec, run_dir, record)
        _check(record)
    except BaseException as exc:  # KeyboardInterrupt included: the parent decides what it means
        record["status"], record["error"] = classify(exc), one_line(exc)
        traceback.print_exc()
        if record["status"] == "oom":
            say("out of memory: recorded as oom")
    record["finished_at"] = now_iso()
    record["wall_s"] = time.perf_counter() - start
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 writes the run's record
        write_atomic(run_dir / "result.json", json.dumps(record, indent=1, allow_nan=False))
        print(RESULT_WRITTEN, flush=True)
    code = 0 if record["status"] == "ok" else 1
    if "TORCHELASTIC_RUN_ID" in os.environ:
        # Once seen (1 in ~10 runs, not reproduced since): a rank finished its work but never
        # exited, so torchrun and the launcher waited. Skip interpreter teardown; all is written.
        sys.stdout.flush(), sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
