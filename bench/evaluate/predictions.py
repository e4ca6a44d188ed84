"""lm-eval's logged samples -> one predictions line per scored question, for any
multiple-choice task (MMLU subjects, ARC, OpenBookQA). Pure data handling: no model, no lm-eval.

A row: {"task", "subject" (MMLU only, else null), "doc_id", "target", "pred", "correct",
"loglikelihoods", "doc_hash", "prompt_hash"}. `pred` is the choice with the highest raw
loglikelihood (lm-eval's `acc`); questions are identified across runs by (task, doc_id).
"""

import json
import math
from pathlib import Path


def number(value):
    """lm-eval reports a missing stderr as "N/A" (or NaN for one question): store null."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def mean_stderr(values: list):
    """lm-eval's mean_stderr: sample standard deviation / sqrt(n); None below 2 values."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n)


def prediction_rows(res: dict, task_subject: dict):
    """One dict per scored question of each task in `task_subject` ({task: subject or None})."""
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
    from bench.util.atomic import write_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))
