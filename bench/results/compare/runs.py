"""Runs to compare: ok records with the directory they came from, and their per-question scores.

A record points to its predictions files by a path relative to its results directory, so each
record travels with that directory (a `Run`). Scores are read per metric as {question: score}:
questions are (task, doc_id) for accuracy and for the gold choice's probability (`<task>.prob`,
from the predictions' log-likelihoods), and the held-out example id for the held-out loss.
Blocks a record lacks (v1 records: no seed, no held-out, no tasks) are simply not measured.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

from bench.models.random_weights import WHY, random_weights
from bench.results import store
from bench.util.errors import BenchError

MMLU, HELDOUT, SUITE = "mmlu", "heldout.loss", "suite"
PROB = ".prob"  # suffix of the gold-probability metric of a task (ftbench_arc_easy.prob, mmlu.prob)


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
    """The runs whose model has trained weights; each run of a shape model (bench.models.random_weights) is
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


def arm_of(record: dict) -> str:
    """What compare pairs within a group: the method, with its process layout when it ran on more
    than one process (`lora[fsdp x2]`), since the group key leaves nproc and strategy out."""
    config = record.get("config") or {}
    nproc = config.get("nproc") or record.get("nproc") or 1
    if not isinstance(nproc, int) or nproc <= 1:
        return record["method"]
    return f"{record['method']}[{config.get('strategy') or record.get('strategy') or '?'} x{nproc}]"


def group_of(record: dict) -> str:
    """The spec without method and seed (v2 group_key); v1 records fall back to compare_key."""
    return record.get("group_key") or record.get("compare_key") or "?"


def precision_of(record: dict):
    return (record.get("precision") or {}).get("policy")


def device_of(record: dict):
    """The kind of device the run ran on ("cpu", "cuda", ...), without its index."""
    device = (record.get("memory") or {}).get("device") or (record.get("config") or {}).get("device")
    return str(device).split(":")[0] if device else None


def fingerprint_of(record: dict):
    return (record.get("data") or {}).get("fingerprint")


RAN = (("precision policy", precision_of), ("device", device_of), ("data fingerprint", fingerprint_of))


def ran_mismatch(a_records, b_records):
    """Why two sides' records did not run the same work (resolved precision policy, device kind,
    data fingerprint), or None. A value no record of a side has (older records) is no mismatch."""
    for what, get in RAN:
        va = sorted({str(v) for v in map(get, a_records) if v is not None})
        vb = sorted({str(v) for v in map(get, b_records) if v is not None})
        if va and vb and va != vb:
            shown = [[v[:12] for v in vs] if what == "data fingerprint" else vs for vs in (va, vb)]
            return f"{what} differs: {'/'.join(shown[0])} vs {'/'.join(shown[1])}"
    return None


def target_task(record: dict):
    """The task with role 'target' in the record's tasks block, or None."""
    for name, block in sorted((record.get("tasks") or {}).items()):
        if isinstance(block, dict) and block.get("role") == "target":
            return name
    return None


def scores(run: Run, *, categories: dict, cache: dict) -> dict:
    """{metric: {question: score}} for every metric this run measured per question.

    Metrics: each scored task by name (acc) and `<task>.prob`, `suite` (the correctness of every
    question of the tasks with role "forget", the forgetting suite, unweighted: pairs.metric_row
    weighs them with suite_scores over the questions both sides answered), `mmlu` and `mmlu.<category>` (acc),
    `heldout.loss`.
    `categories` maps an MMLU subject to its category; subjects it lacks count in `mmlu` only.
    """
    record, out, suite = run.record, {}, []
    for name, block in sorted((record.get("tasks") or {}).items()):
        if isinstance(block, dict) and block.get("predictions_file"):
            rows = _predictions(run, block["predictions_file"], cache)
            out[name] = {key: float(row["correct"]) for key, row in rows.items()}
            _add_prob(out, name, rows)
            suite += [name] if block.get("role") == "forget" else []
    if suite:  # plain correctness here; compare weighs each task over the questions both sides paired
        out[SUITE] = {q: score for name in suite for q, score in out[name].items()}
    mmlu = record.get("mmlu")
    if isinstance(mmlu, dict) and mmlu.get("predictions_file"):
        rows = _predictions(run, mmlu["predictions_file"], cache)
        out[MMLU] = {key: float(row["correct"]) for key, row in rows.items()}
        _add_prob(out, MMLU, rows)
        for key, row in rows.items():
            category = categories.get(row.get("subject"))
            if category:
                out.setdefault(f"{MMLU}.{category}", {})[key] = float(row["correct"])
    losses = _heldout(record)
    if losses:
        out[HELDOUT] = losses
    return out


def suite_scores(tasks: dict) -> dict:
    """{question: weighted correctness} whose plain mean over all questions is the mean over tasks
    of each task's accuracy: question q of task t (n_t questions, T tasks, N in all) scores
    correct * N / (T * n_t). So every task weighs the same, however many questions it has."""
    total, count = sum(len(v) for v in tasks.values()), len(tasks)
    return {q: score * total / (count * len(scored)) for scored in tasks.values() for q, score in scored.items()}


def gold_prob(loglikelihoods, target):
    """The gold choice's probability among the choices: exp(ll_gold) / sum_j exp(ll_j), from the
    raw log-likelihoods lm-eval's `acc` ranks. None without usable log-likelihoods or target."""
    if not isinstance(loglikelihoods, list) or len(loglikelihoods) < 2 or isinstance(target, bool) \
            or not isinstance(target, int) or not 0 <= target < len(loglikelihoods):
        return None
    try:
        lls = [float(v) for v in loglikelihoods]
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in lls):
        return None
    top = max(lls)
    return math.exp(lls[target] - top) / sum(math.exp(v - top) for v in lls)


def _add_prob(out: dict, name: str, rows: dict) -> None:
    """`<name>.prob` for the questions whose line has log-likelihoods and an integer target."""
    probs = {key: gold_prob(row.get("loglikelihoods"), row.get("target")) for key, row in rows.items()}
    probs = {key: p for key, p in probs.items() if p is not None}
    if probs:
        out[name + PROB] = probs


def doc_hashes(run: Run, *, cache: dict) -> dict:
    """{(task, doc_id): doc_hash} over the run's predictions files, where lm-eval logged one."""
    record, out = run.record, {}
    blocks = [b for b in (record.get("tasks") or {}).values() if isinstance(b, dict)] + [record.get("mmlu")]
    for block in blocks:
        if isinstance(block, dict) and block.get("predictions_file"):
            rows = _predictions(run, block["predictions_file"], cache)
            out.update({key: row["doc_hash"] for key, row in rows.items() if row.get("doc_hash")})
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
