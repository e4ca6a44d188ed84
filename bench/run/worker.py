"""The child process: load -> train -> eval on one spec, each phase measured.

    python -m bench.run.worker RUN_DIR/spec.json

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

from bench import method_table
from bench.models.random_weights import is_shape
from bench.results.failure import classify, one_line
from bench.results.record import now_iso, skeleton
from bench.util.atomic import write_atomic
from bench.util.units import mib


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
    """Fill `record` in place; raise on failure (what was measured so far stays in it).
    The run's life: set up -> load -> train -> measure -> estimate -> evaluate, each step a call."""
    import transformers  # noqa: F401  (baseline = interpreter + the stack, before the model)
    import peft  # noqa: F401
    import bitsandbytes  # noqa: F401

    spec, policy, ranks, tracker = _set_up(spec, record)
    model, tokenizer, prepared, batches = _load(spec, record, tracker=tracker, ranks=ranks)
    optimizer, timer = _train(spec, record, tracker=tracker, ranks=ranks, model=model, batches=batches, policy=policy)
    _measure(spec, record, tracker=tracker, ranks=ranks, model=model, batches=batches, optimizer=optimizer,
             policy=policy, timer=timer)
    del optimizer
    _estimate(spec, record, policy=policy, ranks=ranks)
    _evaluate(spec, record, tracker=tracker, ranks=ranks, model=model, tokenizer=tokenizer, prepared=prepared,
              policy=policy, run_dir=run_dir)


def _set_up(spec: dict, record: dict) -> tuple:
    """Device, precision policy and ranks resolved here, the environment and calibration captured,
    the baseline (interpreter + stack, no model) read: (spec as run, policy, ranks, memory tracker)."""
    import torch
    import transformers

    from bench.measure import env
    from bench.training import distributed, precision
    from bench.measure.memory import memory_tracker, peak_rss_bytes, release_memory, rss_bytes

    transformers.logging.set_verbosity_error()
    transformers.set_seed(spec["seed"])
    device = precision.resolve_device(spec["device"])
    spec = dict(spec, device=device)
    policy, record["precision"] = precision.resolve(spec["precision"], device=device)
    spec = precision.apply(spec, policy)
    record["memory"]["device"] = device
    say(f"device {device}, precision {policy.name} ({record['precision']['reason']})")
    ranks = distributed.setup(spec)  # nproc > 1: this process is one rank of a torchrun group
    if device == "cuda" and spec.get("max_memory"):  # the whole device's budget (bench.measure.device_budget)
        from bench.measure import device_budget
        from bench.plan.predict import CUDA_CONTEXT_BYTES
        from bench.util.units import parse_size
        total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
        torch.cuda.set_per_process_memory_fraction(device_budget.pool_fraction(
            budget_bytes=parse_size(spec["max_memory"]), total_bytes=total, outside_bytes=CUDA_CONTEXT_BYTES))
    record["env"] = env.capture()
    record["env"]["calibration"] = _calibration(ranks.place(spec)["device"], policy.compute_dtype)
    release_memory()
    record["memory"]["baseline_bytes"] = rss_bytes()
    record["memory"]["baseline_peak_bytes"] = peak_rss_bytes()
    tracker = memory_tracker(ranks.place(spec)["device"])  # cuda:LOCAL_RANK under torchrun
    if device == "cuda":
        record["memory"]["cuda_context_bytes"] = tracker.context_bytes()
        record["memory"]["nvml"] = tracker.nvml.where  # which physical GPU NVML read, and how it was found
    return spec, policy, ranks, tracker


def _load(spec: dict, record: dict, *, tracker, ranks) -> tuple:
    """The load phase: the model for the method, the tokenizer and the batches. (model, tokenizer, prepared, batches)"""
    import transformers

    from bench import data
    from bench.measure.params import count_params
    from bench.models.shape import shape_info

    record["weights"], record["shape"] = _weights(spec)
    with tracker.track("load") as figures:
        record["memory"]["load"] = figures
        model = ranks.build(spec)  # under FSDP, rank 0 alone reads the checkpoint (bench.training.fsdp_load)
        tokenizer = transformers.AutoTokenizer.from_pretrained(spec["model_path"],
                                                               trust_remote_code=spec["trust_remote_code"])
        prepared = data.prepare(tokenizer=tokenizer, source=spec["data_source"], data_format=spec["data_format"],
                                seq_len=spec["seq_len"], train_on_prompt=spec["train_on_prompt"],
                                packing=spec["packing"], heldout=spec["heldout_examples"],
                                max_unsupervised_pct=spec["max_unsupervised_pct"],
                                keep_duplicates=spec.get("keep_duplicates", False),
                                skip_bad_rows=spec.get("skip_bad_rows", False))
        record["data"] = prepared.info
        batches = prepared.train_batches(seed=spec["seed"], steps=spec["steps"], grad_accum=spec["grad_accum"],
                                         batch_size=spec["batch_size"])
        record["params"] = count_params(model)  # before sharding: FSDP leaves each rank a part
        model, batches = ranks.wrap(model, spec), ranks.shard(batches)
    if record["shape"] is not None:
        record["shape"] = dict(shape_info(spec["model_path"]), load=record["shape"]["load"])
    say(f"load: {figures['wall_s']:.1f} s, peak {mib(figures['peak_bytes']):.0f} MiB, "
        f"{record['params']['trainable']:,} of {record['params']['total']:,} params trainable")
    return model, tokenizer, prepared, batches


def _weights(spec: dict) -> tuple:
    """("random", how it is loaded) for a shape model, ("checkpoint", None) otherwise."""
    if not is_shape(spec.get("model")):
        return "checkpoint", None
    from bench.training.methods import DTYPES, nf4_config
    from bench.models.shape_load import quantised_cache

    how = "layer by layer from the cached seeded-random safetensors, read with pread"
    quant = method_table.method(spec["method"]).quant
    if quant == "nf4":
        cache = quantised_cache(spec["model_path"], quantization_config=nf4_config(spec),
                                dtype=DTYPES[spec["weights_dtype"]])
        how += ("; NF4 weights read from the cache" if cache.is_dir() and any(cache.iterdir())
                else "; quantised to NF4 layer by layer now (then cached)")
    elif quant == "int8":
        how += "; quantised to int8 layer by layer"
    return "random", {"load": how}


def _train(spec: dict, record: dict, *, tracker, ranks, model, batches, policy) -> tuple:
    """The train phase, timed step by step: (optimizer, timer); no optimizer for base."""
    from bench.training import loop as train, methods
    from bench.measure import contention
    from bench.measure.timer import StepTimer

    timer, optimizer = StepTimer(spec["device"]), None
    with tracker.track("train") as figures, contention.track(world=ranks.size) as busy:
        record["memory"]["train"], record["contention"] = figures, busy
        if spec["method"] != "base":
            optimizer = methods.make_optimizer(model, spec)
            scheduler = methods.make_scheduler(optimizer, spec)
            record["loss"] = train.train(model, batches, optimizer=optimizer, scheduler=scheduler, policy=policy,
                                         grad_accum=spec["grad_accum"], device=ranks.place(spec)["device"],
                                         timer=timer, ranks=ranks if ranks.size > 1 else None,
                                         on_step=lambda i, loss, s: say(f"train step {i}/{spec['steps']}: "
                                                                        f"loss {loss:.4f}, {s:.2f} s"))
    # context and paged state count: oom above
    if spec["device"] == "cuda" and spec.get("max_memory") and ranks.size == 1:
        from bench.measure import device_budget
        from bench.plan.predict import CUDA_CONTEXT_BYTES
        from bench.util.units import parse_size
        device_budget.check(figures, budget_bytes=parse_size(spec["max_memory"]),
                            paged_bytes=device_budget.paged_bytes(),
                            context_bytes=record["memory"].get("cuda_context_bytes"),
                            assumed_context_bytes=CUDA_CONTEXT_BYTES)
    return optimizer, timer


def _measure(spec: dict, record: dict, *, tracker, ranks, model, batches, optimizer, policy, timer) -> None:
    """Throughput and MFU from the timed steps, and the breakdown in a phase of its own (the
    profiler's records must not touch the train peak)."""
    from bench.measure import flops
    from bench.measure.timer import throughput

    record["throughput"] = throughput(timer.times_s, timer.tokens, warmup_steps=spec["warmup_steps"])
    if record["throughput"]:
        record["throughput"].update(flops.figures(ranks.unwrap(model), seq_len=spec["seq_len"], world=ranks.size,
                                                  tokens_per_s=record["throughput"]["tokens_per_s"],
                                                  peak_gflops=record["env"]["calibration"].get("matmul_gflops"),
                                                  datasheet_gflops=record["env"]["calibration"].get("datasheet_gflops")))
    if optimizer is not None:
        with tracker.track("breakdown"):
            record["memory"]["breakdown"] = _breakdown(spec, record, model=model, batches=batches, optimizer=optimizer,
                                                       policy=policy, ranks=ranks)


def _estimate(spec: dict, record: dict, *, policy, ranks) -> None:
    """The planner's prediction beside the measured run (bench.plan.for_run). base trains nothing,
    and the planner models one device: no prediction for either."""
    from bench.plan.for_run import estimate

    try:
        record["estimate"] = estimate(spec, record, policy) if spec["method"] != "base" and ranks.size == 1 else None
    except Exception as exc:  # a planner gap (e.g. a mixture-of-experts model) must not cost the measured run
        record["estimate"] = {"error": f"estimate unavailable: {one_line(exc)}"}
        say(record["estimate"]["error"])
    train = record["memory"]["train"]
    say(f"train: {train['wall_s']:.1f} s, peak {mib(train['peak_bytes']):.0f} MiB")


def _evaluate(spec: dict, record: dict, *, tracker, ranks, model, tokenizer, prepared, policy, run_dir: Path) -> None:
    """The eval phase (bench.evaluate): scored on one process, or skipped with the reason kept."""
    from bench.training import precision
    from bench.evaluate import evaluate, skip_reason

    skipped = skip_reason(spec)
    with tracker.track("eval") as figures, precision.autocast(policy, spec["device"]):
        record["memory"]["eval"] = figures
        if skipped:
            record["eval_skipped"] = skipped
        elif not ranks.why_not_scoring():
            evaluate(ranks.unwrap(model), tokenizer, prepared, spec=spec, record=record, run_dir=run_dir, say=say)
    acc = record["mmlu"]["acc"] if record["mmlu"] else None
    record["memory"]["worker_peak_bytes"] = tracker.lifetime_peak_bytes()
    ranks.finish(record)  # rank 0: per-rank figures gathered, peaks = max over ranks
    if ranks.why_not_scoring() and ranks.writer:
        record["distributed"]["eval_skipped"] = ranks.why_not_scoring()
    say(f"eval: {figures['wall_s']:.1f} s, peak {mib(figures['peak_bytes']):.0f} MiB"
        + (f", MMLU acc {100 * acc:.1f}%" if acc is not None else "") + (f" (skipped: {skipped})" if skipped else ""))


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
    from bench.measure.matmul import measure_calibration

    return measure_calibration(device=device, dtype=dtype)


def _check(record: dict) -> None:
    """The record check: an ok record that breaks the schema (e.g. a phase without its peak) is an error."""
    from bench.results.schema import problems

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
