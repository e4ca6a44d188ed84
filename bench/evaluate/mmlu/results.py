"""Turn lm-eval's result dict into ftbench's `mmlu` record block; the predictions lines come from
bench.evaluate.predictions, shared with the target tasks. Pure data handling: no model, no lm-eval import."""

from bench.evaluate.mmlu.tasks import CATEGORIES
from bench.evaluate.predictions import mean_stderr as _mean_stderr, number as _number
from bench.evaluate.predictions import prediction_rows, write_jsonl  # noqa: F401  (scoring writes MMLU's rows with them)


def acc(results: dict, task: str):
    return _number(results[task].get("acc,none"))


def mmlu_block(res: dict, *, group: str, subjects: dict, shots: int, limit) -> dict:
    """The record's `mmlu` object; `subjects` maps subject -> its lm-eval task name."""
    results = res["results"]
    counts = {s: len(res["samples"].get(task, ())) for s, task in subjects.items()}
    stderr, source = _number(results[group].get("acc_stderr,none")), "lm-eval (pooled over subjects)"
    if stderr is None:
        # With one question per subject lm-eval has no per-subject variance to pool and reports
        # N/A; fall back to its own mean_stderr formula over all scored questions.
        stderr = _mean_stderr([float(x["acc"]) for task in subjects.values() for x in res["samples"].get(task, ())])
        source = "sample stderr over all questions (lm-eval gave N/A)" if stderr is not None else None
    return {
        "acc": acc(results, group),
        "stderr": stderr,
        "stderr_source": source,
        "n": sum(counts.values()),
        "shots": shots,
        "limit": limit,
        "categories": {c: acc(results, f"{group}_{c}") for c in CATEGORIES},
        "subjects": {s: acc(results, task) for s, task in sorted(subjects.items())},
        "lm_eval_version": res.get("lm_eval_version"),
        "task_version": f"{group} v{res['versions'].get(group)}, subjects v"
                        f"{res['versions'].get(next(iter(subjects.values())))}",
    }


def other_tasks(res: dict, names) -> dict:
    """{task: {metric: value}} for the extra lm-eval tasks; `acc,none` becomes `acc`."""
    out = {}
    for name in names:
        metrics = {}
        for key, value in res["results"].get(name, {}).items():
            if "," not in key:
                continue
            metric, filt = key.split(",", 1)
            metrics[metric if filt == "none" else key] = _number(value)
        out[name] = metrics
    return out
