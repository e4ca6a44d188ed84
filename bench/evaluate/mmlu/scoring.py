"""Score an in-memory model on MMLU (and optional extra tasks) through lm-eval's Python API.

The harness worker calls `score` after training, in the same process, on the model as
trained (adapters unmerged, quantised base kept). lm-eval's `HFLM` wraps the model object,
so plain, peft-wrapped and 4-bit models go through the same code as lm-eval's own CLI.
"""

import contextlib
import io
import logging
import os
import sys
import time
from pathlib import Path

from bench.evaluate.mmlu import results, tasks as local_tasks
from bench.evaluate.mmlu.options import validate
from bench.util.progress import Progress
from bench.util import paths
from bench.util.errors import BenchError, choices_error

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


REQUEST_KINDS = ("loglikelihood", "loglikelihood_rolling", "generate_until")


class _Counter:
    """Stands in for tqdm in the LM's module: lm-eval's HFLM counts each request it scores with
    `pbar.update(1)` (or by iterating through tqdm), and each count goes to `progress`."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def __call__(self, iterable=None, *args, **kwargs):
        if iterable is None:
            return self
        return self._counted(iterable)

    def _counted(self, iterable):
        for item in iterable:
            yield item
            self.progress.update(1)

    def update(self, n=1):
        self.progress.update(n)

    def close(self):
        pass


@contextlib.contextmanager
def reporting(lm, *, what: str, say):
    """While lm-eval scores through `lm`, say how many requests (one per answer choice scored) are
    done out of how many, for how many questions, at Progress's bounded rate. Each request kind's
    call is wrapped on this instance only; inside it, the tqdm of the LM's own module (where HFLM
    counts per request) counts into the same Progress. Without `say`, nothing changes."""
    if say is None:
        yield
        return
    module = sys.modules.get(type(lm).__module__)
    originals = {kind: getattr(lm, kind) for kind in REQUEST_KINDS if hasattr(lm, kind)}

    def wrap(kind, call):
        def counted(requests, *args, **kwargs):
            questions = len({(getattr(r, "task_name", None), getattr(r, "doc_id", i)) for i, r in enumerate(requests)})
            progress = Progress(what=f"{what} ({questions:,} questions)", total=len(requests), unit="requests", say=say)
            patched = module is not None and hasattr(module, "tqdm")
            saved = getattr(module, "tqdm", None)
            if patched:
                module.tqdm = _Counter(progress)
            try:
                return call(requests, *args, **kwargs)
            finally:
                if patched:
                    module.tqdm = saved
                progress.finish()
        return counted

    own = {kind: vars(lm)[kind] for kind in originals if kind in vars(lm)}
    for kind, call in originals.items():
        setattr(lm, kind, wrap(kind, call))
    try:
        yield
    finally:
        for kind in originals:
            if kind in own:
                setattr(lm, kind, own[kind])
            else:
                delattr(lm, kind)  # the class's own method shows through again


def _evaluate(*, lm, names, manager, shots, limit, quiet, say=None) -> dict:
    """One lm-eval run; progress bars go to a buffer when quiet (our own progress lines go to `say`),
    errors become BenchError."""
    from lm_eval import simple_evaluate

    sink = io.StringIO() if quiet else None
    try:
        with contextlib.redirect_stderr(sink) if quiet else contextlib.nullcontext(), \
                reporting(lm, what=", ".join(names), say=say):
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
          source="local", quiet=True, say=None) -> dict:
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
                    source=source, quiet=quiet, say=say)


def _preflight(*, shots, limit, tasks, source) -> None:
    validate(shots=shots, limit=limit, tasks=tasks)
    if source not in SOURCES:
        raise choices_error("mmlu source", source, SOURCES)
    local_tasks.ensure_tasks()  # checks the local data: also the few-shot source for `builtin`
    _prepare_environment(offline=source == "local")


def score_lm(*, lm, shots, limit, predictions_path, tasks=(), source="local", quiet=True, say=None) -> dict:
    """`score` for any lm-eval `LM` object (tests pass a stub; `score` passes HFLM). `say` gets
    progress lines while scoring (bench.util.progress)."""
    _preflight(shots=shots, limit=limit, tasks=tasks, source=source)
    group = local_tasks.GROUP if source == "local" else "mmlu"
    subjects = {s: f"{group}_{s}" for s in local_tasks.builtin_subjects()}
    manager = _task_manager(source=source)
    started = time.perf_counter()
    res = _evaluate(lm=lm, names=[group], manager=manager, shots=shots, limit=limit, quiet=quiet, say=say)
    eval_s = time.perf_counter() - started
    block = results.mmlu_block(res, group=group, subjects=subjects, shots=shots, limit=limit)
    results.write_jsonl(Path(predictions_path),
                        results.prediction_rows(res, {task: s for s, task in subjects.items()}))
    block.update(predictions_file=Path(predictions_path).name, eval_s=eval_s,
                 questions_per_s=block["n"] / eval_s if eval_s > 0 else None)
    extra = {}
    if tasks:
        manager = _task_manager(source=source, extra=tasks)
        res = _evaluate(lm=lm, names=tasks, manager=manager, shots=shots, limit=limit, quiet=quiet, say=say)
        extra = results.other_tasks(res, tasks)
    return {"mmlu": block, "tasks": extra}
