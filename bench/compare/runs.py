"""Runs to compare: ok records with the directory they came from, and their per-question scores.

A record points to its predictions files by a path relative to its results directory, so each
record travels with that directory (a `Run`). Scores are read per metric as {question: score}:
questions are (task, doc_id) for accuracy and the held-out example id for the held-out loss.
Blocks a record lacks (v1 records: no seed, no held-out, no tasks) are simply not measured.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

from bench import store
from bench.errors import BenchError
from bench.weights import WHY, random_weights

MMLU, HELDOUT = "mmlu", "heldout.loss"


@dataclass(frozen=True)
class Run:
    record: dict
    root: Path  # the results directory; predictions paths are relative to it


def load_runs(sources) -> list:
    """The ok records of each results directory (or file), each with its directory."""
    runs = []
    for source in sources:
        records, _ = store.read(source)
        root = Path(source) if Path(source).is_dir() else Path(source).parent
        runs += [Run(r, root) for r in records if r.get("status") == "ok"]
    if not runs:
        listed = ", ".join(str(s) for s in sources)
        raise BenchError(f"no ok runs in {listed}; compare needs finished runs (status ok) of at least two methods")
    return runs


def as_runs(records, root) -> list:
    """Wrap the ok records read from one directory as Runs (for callers that already read them)."""
    return [Run(r, Path(root)) for r in records if r.get("status") == "ok"]


def real_weights(runs, notes: list) -> list:
    """The runs whose model has trained weights; each run of a shape model (bench.weights) is
    left out of every verdict and named in `notes`."""
    left = [run.record for run in runs if random_weights(run.record)]
    if left:
        models = ", ".join(dict.fromkeys(str(r.get("model")) for r in left))
        notes.append(f"{len(left)} run(s) of {models} left out: {WHY}")
    return [run for run in runs if not random_weights(run.record)]


def seed_of(record: dict) -> int:
    """The run's seed: top-level in v2, config.seed in v1 (one seed per matrix there)."""
    seed = record.get("seed")
    return seed if seed is not None else (record.get("config") or {}).get("seed", 0)


def group_of(record: dict) -> str:
    """The spec without method and seed (v2 group_key); v1 records fall back to compare_key."""
    return record.get("group_key") or record.get("compare_key") or "?"


def precision_of(record: dict):
    return (record.get("precision") or {}).get("policy")


def fingerprint_of(record: dict):
    return (record.get("data") or {}).get("fingerprint")


def target_task(record: dict):
    """The task with role 'target' in the record's tasks block, or None."""
    for name, block in sorted((record.get("tasks") or {}).items()):
        if isinstance(block, dict) and block.get("role") == "target":
            return name
    return None


def scores(run: Run, *, categories: dict, cache: dict) -> dict:
    """{metric: {question: score}} for every metric this run measured per question.

    Metrics: each scored task by name (acc), `mmlu` and `mmlu.<category>` (acc), `heldout.loss`.
    `categories` maps an MMLU subject to its category; subjects it lacks count in `mmlu` only.
    """
    record, out = run.record, {}
    for name, block in sorted((record.get("tasks") or {}).items()):
        if isinstance(block, dict) and block.get("predictions_file"):
            rows = _predictions(run, block["predictions_file"], cache)
            out[name] = {key: float(row["correct"]) for key, row in rows.items()}
    mmlu = record.get("mmlu")
    if isinstance(mmlu, dict) and mmlu.get("predictions_file"):
        rows = _predictions(run, mmlu["predictions_file"], cache)
        out[MMLU] = {key: float(row["correct"]) for key, row in rows.items()}
        for key, row in rows.items():
            category = categories.get(row.get("subject"))
            if category:
                out.setdefault(f"{MMLU}.{category}", {})[key] = float(row["correct"])
    losses = _heldout(record)
    if losses:
        out[HELDOUT] = losses
    return out


def _predictions(run: Run, relative: str, cache: dict) -> dict:
    """{(task, doc_id): row} from a predictions file, read once per compare."""
    path = Path(relative) if Path(relative).is_absolute() else run.root / relative
    if path not in cache:
        cache[path] = read_predictions(path, run_id=run.record.get("run_id", "?"))
    return cache[path]


def read_predictions(path: Path, *, run_id: str) -> dict:
    """Parse a predictions JSONL strictly: a missing, empty or corrupt file is a BenchError."""
    expected = "one JSON object per line with task, doc_id and correct (true/false)"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BenchError(f"run {run_id}: predictions file {path} is missing; keep the runs/ "
                         "folder beside its results.jsonl, or rerun that run") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"run {run_id}: cannot read predictions file {path}: {exc}") from None
    rows = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            key = (row["task"], row["doc_id"])
            if not isinstance(row["correct"], bool) or key in rows:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise BenchError(f"{path}:{number}: corrupt predictions line; expected {expected}, "
                             "each (task, doc_id) once") from None
        rows[key] = row
    if not rows:
        raise BenchError(f"{path}: empty predictions file; expected {expected}")
    return rows


def _heldout(record: dict) -> dict:
    """{example id: loss} from the record's held-out block; non-finite losses are left out."""
    block = record.get("heldout")
    if not isinstance(block, dict) or block.get("losses") is None:
        return {}
    losses, ids = block.get("losses"), block.get("ids")
    if not isinstance(losses, list) or not isinstance(ids, list) or len(ids) != len(losses) \
            or len(set(map(str, ids))) != len(ids):
        raise BenchError(f"run {record.get('run_id', '?')}: heldout.losses and heldout.ids must be "
                         "lists of equal length with unique ids")
    return {str(i): float(v) for i, v in zip(ids, losses)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
