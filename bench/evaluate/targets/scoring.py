"""Score a model on a built-in task's test split through lm-eval, as MMLU is scored.

    lm = make_lm(model=model, tokenizer=tok, batch_size=8, device="cpu")
    block = score_task(lm=lm, task="ftbench_arc_easy", limit=200,
                       predictions_path=run_dir / "ftbench_arc_easy_predictions.jsonl")

The task is one of the generated local tasks (bench.evaluate.targets.tasks: lm-eval's own definition,
local data), run 0-shot unless asked, on the first `limit` test questions (None: all). One
predictions line per question, in MMLU's row format (bench.evaluate.predictions).
"""

import time
from pathlib import Path

from bench.data import builtin
from bench.evaluate import predictions
from bench.evaluate.mmlu import scoring as mmlu_scoring
from bench.evaluate.targets import tasks as target_tasks
from bench.util.errors import BenchError, choices_error


def make_lm(*, model, tokenizer, batch_size, device: str = "cpu"):
    """lm-eval's HFLM around an in-memory model (plain, peft-wrapped or 4-bit), as MMLU uses it."""
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)


def _check(task: str, limit, shots) -> None:
    valid = [target_tasks.target_task(s) for s in builtin.TASKS]
    if task not in valid:
        raise choices_error("target task", task, valid)
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise BenchError(f"target limit {limit!r} is not valid; use a positive integer or None for all")
    if not isinstance(shots, int) or isinstance(shots, bool) or shots < 0:
        raise BenchError(f"target shots {shots!r} is not valid; use an integer >= 0")


def task_block(res: dict, *, task: str, limit, shots: int) -> dict:
    """The record's `tasks.<task>` object from lm-eval's result dict."""
    metrics = res["results"][task]
    samples = res["samples"].get(task, [])
    stderr = predictions.number(metrics.get("acc_stderr,none"))
    if stderr is None:
        stderr = predictions.mean_stderr([float(s["acc"]) for s in samples])
    block = {"acc": predictions.number(metrics.get("acc,none")), "stderr": stderr, "n": len(samples),
             "limit": limit, "shots": shots}
    if "acc_norm,none" in metrics:
        block["acc_norm"] = predictions.number(metrics["acc_norm,none"])
        block["acc_norm_stderr"] = predictions.number(metrics.get("acc_norm_stderr,none"))
    block.update(lm_eval_version=res.get("lm_eval_version"), task_version=f"{task} v{res['versions'].get(task)}")
    return block


def score_task(*, lm, task: str, limit, predictions_path, shots: int = 0, quiet: bool = True, say=None) -> dict:
    """Score `lm` on local target `task`; write its predictions file; return the `tasks.<task>` block
    (acc, acc_norm, stderr, n, limit, ...; the caller adds role and the run-relative predictions_file)."""
    _check(task, limit, shots)
    folder = target_tasks.ensure_tasks()
    mmlu_scoring._prepare_environment(offline=True)
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(folder), include_defaults=False)
    started = time.perf_counter()
    res = mmlu_scoring._evaluate(lm=lm, names=[task], manager=manager, shots=shots, limit=limit, quiet=quiet,
                                 say=say)
    eval_s = time.perf_counter() - started
    block = task_block(res, task=task, limit=limit, shots=shots)
    predictions.write_jsonl(Path(predictions_path), predictions.prediction_rows(res, {task: None}))
    block.update(predictions_file=Path(predictions_path).name, eval_s=eval_s,
                 questions_per_s=block["n"] / eval_s if eval_s > 0 else None)
    return block


def score_suite(*, model, tokenizer, batch_size, device, names, limit, run_dir, quiet: bool = True,
                say=None) -> dict:
    """The forgetting suite (bench.evaluate.targets.suite names, e.g. hellaswag) on the first `limit`
    questions of each task, 0-shot, in one lm-eval run: {task: its `tasks.<task>` block with
    role "forget" and a run-relative predictions_file}, one predictions file per task in run_dir."""
    from bench.evaluate.targets import suite

    tasks = [suite.SUITE[name].task for name in suite.check_names(names)]
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise BenchError(f"forgetting suite limit {limit!r} is not valid; use a positive integer or None for all")
    if not suite.is_unpacked():
        raise BenchError(f"forgetting suite data is missing from {suite.data_dir()}; {builtin.SETUP_HINT}")
    folder = target_tasks.ensure_tasks()
    mmlu_scoring._prepare_environment(offline=True)
    from lm_eval.tasks import TaskManager

    lm = make_lm(model=model, tokenizer=tokenizer, batch_size=batch_size, device=device)
    started = time.perf_counter()
    res = mmlu_scoring._evaluate(lm=lm, names=tasks,
                                 manager=TaskManager(include_path=str(folder), include_defaults=False),
                                 shots=0, limit=limit, quiet=quiet, say=say)
    eval_s = time.perf_counter() - started
    run_dir, out = Path(run_dir), {}
    questions = 0
    for task in tasks:
        block = task_block(res, task=task, limit=limit, shots=0)
        name = f"{task}_predictions.jsonl"
        predictions.write_jsonl(run_dir / name, predictions.prediction_rows(res, {task: None}))
        out[task] = dict(block, role="forget", chance=suite.chance_of(task),
                         predictions_file=f"runs/{run_dir.name}/{name}")
        questions += block["n"]
    for block in out.values():  # one lm-eval run scored them all: its time is the suite's
        block.update(suite_eval_s=eval_s, suite_questions_per_s=questions / eval_s if eval_s > 0 else None)
    return out
