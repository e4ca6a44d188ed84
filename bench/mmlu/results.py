"""Turn lm-eval's result dict into ftbench's `mmlu` record block, and its logged samples into
one predictions line per question. Pure data handling: no model, no lm-eval import."""

import json
import math
from pathlib import Path

from bench.atomic import write_atomic
from bench.mmlu.tasks import CATEGORIES


def _number(value):
    """lm-eval reports a missing stderr as "N/A" (or NaN for one question): store null."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _mean_stderr(values: list):
    """lm-eval's mean_stderr: sample standard deviation / sqrt(n); None below 2 values."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n)


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


def prediction_rows(res: dict, task_subject: dict):
    """One dict per scored question: which choice the model picked and every choice's loglikelihood."""
    for task, subject in task_subject.items():
        for sample in sorted(res["samples"].get(task, ()), key=lambda s: s["doc_id"]):
            lls = [float(r[0]) for r in sample["filtered_resps"]]
            yield {
                "task": task, "subject": subject, "doc_id": sample["doc_id"],
                "target": sample["target"], "pred": max(range(len(lls)), key=lls.__getitem__),
                "correct": bool(sample["acc"]), "loglikelihoods": lls,
                "doc_hash": sample.get("doc_hash"), "prompt_hash": sample.get("prompt_hash"),
            }


def write_jsonl(path: Path, rows) -> None:
    """Write rows as JSONL atomically: readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))
