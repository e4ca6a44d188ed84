"""`run_bench.py run` (the default sub-command): profile -> matrix -> one child per run -> records."""

import argparse
import signal
from pathlib import Path

from bench.results import trackers
from bench.run.preflight import check_data
from bench.util.errors import BenchError

# option -> (section, key, type)
OVERRIDES = {
    "models": ("run", "models", None), "methods": ("run", "methods", None),
    "steps": ("run", "steps", int), "seq_len": ("run", "seq_len", int), "batch_size": ("run", "batch_size", int),
    "grad_accum": ("run", "grad_accum", int), "seeds": ("run", "seeds", None), "lr": ("run", "lr", float),
    "optimizer": ("run", "optimizer", str), "device": ("run", "device", str), "precision": ("run", "precision", str),
    "data": ("data", "source", str), "data_format": ("data", "format", str), "heldout": ("data", "heldout", int),
    "run_timeout": ("run", "run_timeout_s", int), "max_memory": ("run", "max_memory", str),
    "nproc": ("run", "nproc", int), "strategy": ("run", "strategy", str),
    "lora_r": ("lora", "r", int), "target_modules": ("lora", "target_modules", None),
    "shots": ("eval", "shots", int), "mmlu_limit": ("eval", "limit", int),  # 0 = all in a profile
    "eval_batch_size": ("eval", "batch_size", int), "tasks": ("eval", "tasks", None),
    "target_limit": ("eval", "target_limit", int),
    "forget": ("eval", "forget", None), "forget_limit": ("eval", "forget_limit", int),
}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("run", help="run a matrix of models x methods (the default sub-command)",
                              description="Run every (model, method) of a profile, each in a fresh child process, "
                                          "and append one record per run to OUT/results.jsonl.")
    p.add_argument("--profile", default="default", help="profile name in profiles/ or a .toml path (default: default)")
    p.add_argument("--models", nargs="+",
                   help="smollm2-135m, tiny-llama, shape:NAME (a planner preset or config.json at its real size, "
                        "random weights), a local model directory or a hub id")
    p.add_argument("--methods", nargs="+", help="any of: base full lora qlora dora lora8")
    for flag, kind, text in (("--steps", int, "optimizer steps"), ("--seq-len", int, "tokens per sequence"),
                             ("--batch-size", int, "sequences per micro-batch"),
                             ("--grad-accum", int, "micro-batches per step"),
                             ("--lr", float, "learning rate"),
                             ("--heldout", int, "examples held out for the held-out loss"),
                             ("--lora-r", int, "LoRA rank"), ("--shots", int, "MMLU few-shot examples (0-25)"),
                             ("--mmlu-limit", _limit, "first K test questions per subject, or all (14,042)"),
                             ("--eval-batch-size", int, "lm-eval batch size"),
                             ("--target-limit", _limit, "first K test questions of the target task, or all"),
                             ("--forget-limit", _limit, "first K questions of each forgetting-suite task, or all"),
                             ("--run-timeout", int, "seconds before a run is killed (status timeout)")):
        p.add_argument(flag, type=kind, help=text)
    p.add_argument("--nproc", type=int, help="processes per run (torchrun); >1 splits each global batch across ranks")
    p.add_argument("--strategy", help="with --nproc > 1: auto, ddp or fsdp")
    p.add_argument("--executor", default="local",
                   help="where runs execute: local (default), ray, slurm, submitit-local")
    p.add_argument("--ray-address", help="address of an existing Ray cluster (default: start a local one)")
    p.add_argument("--slurm-partition", help="Slurm partition for --executor slurm")
    p.add_argument("--cpus-per-run", type=int, help="CPUs each ray/slurm run asks for (default: ray, all of a "
                                                     "node's for CPU runs, nproc for CUDA runs; slurm, "
                                                     "the partition's)")
    p.add_argument("--optimizer", help="adamw_torch, adamw_8bit, paged_adamw, paged_adamw_8bit")
    p.add_argument("--seeds", nargs="+", type=_seed, metavar="SEED",
                   help="one run per seed (data order and adapter init), e.g. --seeds 0 1 2; base runs once")
    p.add_argument("--device", help="auto, cpu or cuda (auto and the precision are resolved where the run runs)")
    p.add_argument("--precision", help="auto, fp32, bf16-true, bf16-mixed or fp16-mixed (see docs/precision.md)")
    p.add_argument("--data", help="training data: a built-in dataset name or a JSONL/JSON/CSV/Parquet file")
    p.add_argument("--data-format", help="auto (detected), text, prompt-completion, alpaca, chat or sharegpt")
    p.add_argument("--train-on-prompt", action=argparse.BooleanOptionalAction, default=None,
                   help="loss on prompt tokens too (off: on the completion only)")
    p.add_argument("--packing", action=argparse.BooleanOptionalAction, default=None,
                   help="pack examples into seq_len rows (off: one padded example per row)")
    p.add_argument("--skip-bad-rows", action=argparse.BooleanOptionalAction, default=None,
                   help="train on the rows that read, leaving out the bad ones (counted in the record); "
                        "off: list every bad row and stop")
    p.add_argument("--data-check", action="store_true",
                   help="only check the data of every run (every bad row listed, token lengths) and exit")
    p.add_argument("--target-modules", nargs="+", help="LoRA targets: all-linear or module names (q_proj v_proj ...)")
    p.add_argument("--grad-checkpointing", action=argparse.BooleanOptionalAction, default=None,
                   help="gradient checkpointing on or off")
    p.add_argument("--tasks", nargs="+", help="extra lm-eval tasks whose data is reachable")
    p.add_argument("--forget", nargs="+", metavar="TASK",
                   help="forgetting suite: any of hellaswag arc-challenge winogrande piqa (scored before and after)")
    p.add_argument("--no-eval", action="store_true",
                   help="skip MMLU, target-task and forgetting-suite scoring "
                        "(the cheap held-out loss is still measured)")
    p.add_argument("--max-memory", help="per-run memory budget, e.g. 8GiB; over it the run is recorded as oom "
                                        "(CPU runs given none: 85%% of the memory available at start)")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow model code from the checkpoint (off by default)")
    p.add_argument("--out", type=Path,
                   help="output directory (default: ./reports/<profile>, under the working directory)")
    p.add_argument("--resume", action="store_true", help="run only what OUT is missing or what failed there")
    p.add_argument("--append", action="store_true", help="add repeat runs to an existing OUT")
    p.add_argument("--no-report", action="store_true", help="do not write OUT/index.html")
    p.add_argument("--dry-run", action="store_true",
                   help="print the matrix as it will run (resolved device and precision, data counts, questions "
                        "per task, planned memory against the budget, estimated time) and exit without training")
    p.add_argument("--log-to", nargs="+", metavar="TRACKER", default=[],
                   help="also log each run to mlflow (SQLite store OUT/mlflow.db) and/or tensorboard "
                        "(OUT/tensorboard/); needs the trackers extra: pip install -e .[trackers]")
    _show_defaults(p)
    p.set_defaults(func=run)


# flags whose value, when not given, comes from the profile: --help shows the default profile's
PROFILE_FLAGS = {**{attr: (section, key) for attr, (section, key, _) in OVERRIDES.items()},
                 "grad_checkpointing": ("run", "grad_checkpointing"), "train_on_prompt": ("data", "train_on_prompt"),
                 "packing": ("data", "packing"), "skip_bad_rows": ("data", "skip_bad_rows")}


def _default_profile() -> dict:
    """profiles/_defaults.toml with profiles/default.toml over it, unvalidated: only for --help."""
    from bench.run.profile import _read, defaults, profile_path

    settings = defaults()
    for section, values in _read(profile_path("default")).items():
        settings.get(section, {}).update(values if isinstance(values, dict) else {})
    return settings


def _shown(value) -> str:
    if isinstance(value, list):
        return " ".join(map(str, value)) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return {"": "none"}.get(value, str(value)) if isinstance(value, str) else str(value)


def _show_defaults(parser) -> None:
    """Append '(default profile: VALUE)' to each option the profile decides."""
    settings = _default_profile()
    for action in parser._actions:
        place = PROFILE_FLAGS.get(action.dest)
        if place is None or action.help is None:
            continue
        value = settings[place[0]][place[1]]
        if action.dest in ("mmlu_limit", "target_limit", "forget_limit") and value == 0:
            value = "all"
        action.help = f"{action.help} (default profile: {_shown(value).replace('%', '%%')})"


def _limit(text: str) -> int:
    """argparse type for question limits: a positive K, or `all` (0 inside a profile)."""
    if text.strip().lower() == "all":
        return 0
    if not text.strip().isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"a question limit is a positive number of questions or all, got {text!r}; "
                                         "use all for every question")
    return int(text)


def overrides_from(args) -> dict:
    out = {}
    for attr, (section, key, _) in OVERRIDES.items():
        value = getattr(args, attr, None)
        if value is not None:
            if key == "target_modules" and value == ["all-linear"]:
                value = "all-linear"
            out.setdefault(section, {})[key] = value
    for attr, section, key in (("grad_checkpointing", "run", "grad_checkpointing"),
                               ("train_on_prompt", "data", "train_on_prompt"), ("packing", "data", "packing"),
                               ("skip_bad_rows", "data", "skip_bad_rows")):
        if getattr(args, attr) is not None:
            out.setdefault(section, {})[key] = getattr(args, attr)
    if args.no_eval:
        out.setdefault("eval", {}).update(mmlu=False, target=False, forget=[])
    if args.trust_remote_code:
        out.setdefault("run", {})["trust_remote_code"] = True
    return out


def _seed(text: str) -> int:
    """argparse type for --seeds (its error becomes one line through bench.cli)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"seeds are non-negative integers, got {text!r}; e.g. --seeds 0 1 2")
    return int(text)


def run(args) -> int:
    from bench.run.matrix import build_matrix
    from bench.run.profile import load_profile
    from bench.run.session import run_matrix

    from bench.run.executors import EXECUTORS, make_executor

    if args.executor not in EXECUTORS:
        raise BenchError(f"unknown executor {args.executor!r}; valid choices: {', '.join(EXECUTORS)}")
    if args.executor == "slurm" and not args.slurm_partition:
        raise BenchError("--executor slurm needs --slurm-partition NAME")
    for name in args.log_to:
        trackers.check(name)  # before any run: a missing extra is one line, not a lost matrix
    settings = load_profile(args.profile, overrides=overrides_from(args))
    for note in settings["notes"]:
        print(f"note: {note}", flush=True)
    specs = build_matrix(settings)
    if args.executor == "local":
        from bench.run.hardware import preflight
        preflight(specs)
    from bench.run import budget
    from bench.run.hardware import runs_on_cpu
    budget.check(specs, on_cpu=runs_on_cpu)
    check_data(specs)
    if args.data_check:
        return 0
    _memory_budget(specs, executor=args.executor)
    from bench.run import dry_run
    if args.dry_run:
        print(dry_run.render(specs), flush=True)
        return 0
    out_dir = (args.out or Path.cwd() / "reports" / settings["profile"]).resolve()
    _check_out_dir(out_dir, resume=args.resume, append=args.append)
    print(f"writing to {out_dir}", flush=True)
    # SIGINT and SIGTERM stop the matrix cleanly, whatever this process inherited: a job started
    # with & from a script (CI, nohup) inherits SIGINT ignored, and a blocked mask survives exec.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    executor = make_executor(args.executor, out_dir=out_dir, ray_address=args.ray_address,
                             slurm_partition=args.slurm_partition, cpus_per_run=args.cpus_per_run)
    logs = [trackers.open_tracker(name, out_dir=out_dir) for name in dict.fromkeys(args.log_to)]
    return run_matrix(specs, out_dir=out_dir, resume=args.resume, report=not args.no_report, executor=executor,
                      trackers=logs, estimates=dry_run.seconds_by_run(specs))


def _memory_budget(specs: list, *, executor: str) -> None:
    """The default budget for CPU runs given none (bench.run.budget), said once; then each run whose
    planner floor already exceeds its budget, one line each. Only where runs start on this
    machine one at a time: a Ray or Slurm node's memory is not this machine's."""
    from bench.run import budget
    from bench.run.hardware import run_device, runs_on_cpu

    if executor in ("local", "submitit-local"):
        default = budget.apply_default(specs, on_cpu=runs_on_cpu, concurrent=1)
        if default:
            print(f"memory budget per CPU run: {default['source']} (no --max-memory given; a run over it is "
                  "recorded as oom)", flush=True)
    for line in budget.over_budget(specs, device_of=run_device):
        print(f"warning: {line}", flush=True)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _check_out_dir(out_dir: Path, *, resume: bool, append: bool) -> None:
    import os

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchError(f"cannot create output directory {out_dir}: {exc.strerror}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise BenchError(f"output directory {out_dir} is not writable")
    if (out_dir / "results.jsonl").exists() and not (resume or append):
        raise BenchError(f"{out_dir} already holds results; pass --resume to complete them, "
                         f"--append to add repeats, or --out DIR to write elsewhere")
