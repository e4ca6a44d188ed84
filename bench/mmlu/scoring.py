"""Score an in-memory model on MMLU (and optional extra tasks) through lm-eval's Python API.

The harness worker calls `score` after training, in the same process, on the model as
trained (adapters unmerged, quantised base kept). lm-eval's `HFLM` wraps the model object,
so plain, peft-wrapped and 4-bit models go through the same code as lm-eval's own CLI.
"""

import contextlib
import io
import logging
import os
import time
from pathlib import Path

from bench import paths
from bench.errors import BenchError, choices_error
from bench.mmlu import results, tasks as local_tasks
from bench.mmlu.options import validate

# local: ftbench's generated tasks over the offline JSONL; builtin: lm-eval's own `mmlu`
# (needs the Hugging Face hub for `cais/mmlu`).
SOURCES = ("local", "builtin")


def _prepare_environment(*, offline: bool) -> None:
    """Keep datasets' cache under the ftbench cache and, for local data, off the network."""
    hf_home = paths.hf_home()
    os.environ.setdefault("HF_HOME", str(hf_home))
    os.environ.setdefault("HF_DATASETS_CACHE", str(hf_home / "datasets"))
    if offline:
        os.environ["HF_DATASETS_OFFLINE"] = "1"
        os.environ["HF_HUB_OFFLINE"] = "1"
    for name in ("lm_eval", "datasets", "transformers.modeling_utils"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


def _task_manager(*, source: str, extra=()):
    from lm_eval.tasks import TaskManager

    folder = local_tasks.tasks_dir()
    builtin = source == "builtin" or any(not t.startswith(local_tasks.PREFIX) for t in extra)
    # The default index costs about 24 s: build it only when a built-in task is asked for.
    return TaskManager(include_path=str(folder), include_defaults=builtin)


def _evaluate(*, lm, names, manager, shots, limit, quiet) -> dict:
    """One lm-eval run; progress bars go to a buffer when quiet, errors become BenchError."""
    from lm_eval import simple_evaluate

    sink = io.StringIO() if quiet else None
    try:
        with contextlib.redirect_stderr(sink) if quiet else contextlib.nullcontext():
            res = simple_evaluate(model=lm, tasks=list(names), num_fewshot=shots, limit=limit,
                                  task_manager=manager, log_samples=True, verbosity="ERROR")
    except OSError as exc:  # datasets raises ConnectionError / FileNotFoundError for unreachable data
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise BenchError(f"lm-eval tasks {', '.join(names)}: data not reachable "
                         f"({exc.__class__.__name__}: {first_line})") from None
    if res is None:
        raise RuntimeError("lm-eval returned no results")
    return res


def _check_batch_size(batch_size) -> None:
    if batch_size != "auto" and (not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1):
        raise BenchError(f"mmlu batch size {batch_size!r} is not valid; use a positive integer or 'auto'")


def score(*, model, tokenizer, shots, limit, batch_size, predictions_path, tasks=(), device="cpu",
          source="local", quiet=True) -> dict:
    """Score `model` on MMLU; return {"mmlu": record block, "tasks": {task: {metric: value}}}.

    Writes one JSONL line per MMLU question to `predictions_path` (atomically). `limit` is
    the first K test questions of every subject, as lm-eval's --limit; extra `tasks` use the
    same shots and limit and are timed separately, so `questions_per_s` is MMLU's alone.
    Bad options and missing or corrupt data raise BenchError before the model is touched.
    """
    _check_batch_size(batch_size)
    _preflight(shots=shots, limit=limit, tasks=tasks, source=source)
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)
    return score_lm(lm=lm, shots=shots, limit=limit, predictions_path=predictions_path, tasks=tasks,
                    source=source, quiet=quiet)


def _preflight(*, shots, limit, tasks, source) -> None:
    validate(shots=shots, limit=limit, tasks=tasks)
    if source not in SOURCES:
        raise choices_error("mmlu source", source, SOURCES)
    local_tasks.ensure_tasks()  # checks the local data: also the few-shot source for `builtin`
    _prepare_environment(offline=source == "local")


def score_lm(*, lm, shots, limit, predictions_path, tasks=(), source="local", quiet=True) -> dict:
    """`score` for any lm-eval `LM` object (tests pass a stub; `score` passes HFLM)."""
    _preflight(shots=shots, limit=limit, tasks=tasks, source=source)
    group = local_tasks.GROUP if source == "local" else "mmlu"
    subjects = {s: f"{group}_{s}" for s in local_tasks.builtin_subjects()}
    manager = _task_manager(source=source)
    started = time.perf_counter()
    res = _evaluate(lm=lm, names=[group], manager=manager, shots=shots, limit=limit, quiet=quiet)
    eval_s = time.perf_counter() - started
    block = results.mmlu_block(res, group=group, subjects=subjects, shots=shots, limit=limit)
    results.write_jsonl(Path(predictions_path),
                        results.prediction_rows(res, {task: s for s, task in subjects.items()}))
    block.update(predictions_file=Path(predictions_path).name, eval_s=eval_s,
                 questions_per_s=block["n"] / eval_s if eval_s > 0 else None)
    extra = {}
    if tasks:
        manager = _task_manager(source=source, extra=tasks)
        res = _evaluate(lm=lm, names=tasks, manager=manager, shots=shots, limit=limit, quiet=quiet)
        extra = results.other_tasks(res, tasks)
    return {"mmlu": block, "tasks": extra}
