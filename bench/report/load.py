"""Result sources -> one pandas DataFrame of runs, plus each source's environment.

A source is a directory holding results.jsonl (or the file itself). Each is read with
bench.store.read, so a corrupt line is named by number; with skip_bad_lines the good lines
are kept and the problems travel with the data so the page can show them. Figures stay in
base units here (bytes, seconds); the charts and the table convert them for display.
"""

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench import store
from bench.errors import BenchError
from bench.schema import PHASES

# Columns of the runs frame, in table order. Every one exists even when no record fills it.
COLUMNS = (
    "source", "run_id", "model", "method", "status", "error", "device", "device_name",
    "trainable", "total", "trainable_pct",
    "load_peak_bytes", "train_peak_bytes", "eval_peak_bytes", "process_peak_bytes",
    "acc", "stderr", "mmlu_n", "mmlu_shots", "tokens_per_s", "step_p50_s",
    "est_bytes", "est_error_pct", "wall_s", "started_at", "loss",
)


@dataclass
class Loaded:
    """What a report is built from: one row per run, one environment per source."""

    runs: pd.DataFrame
    envs: dict = field(default_factory=dict)  # label -> {key: "value | other value"}
    problems: list = field(default_factory=list)  # one readable line per skipped bad line


def _get(mapping, *keys):
    """mapping[k1][k2]..., or None where any level is missing or null."""
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def flatten(record: dict, *, source: str) -> dict:
    """One record as one flat row of COLUMNS (None where the run never reached a figure)."""
    row = {
        "source": source, "run_id": record.get("run_id"), "model": record.get("model"),
        "method": record.get("method"), "status": record.get("status"), "error": record.get("error"),
        "device": _get(record, "memory", "device"), "device_name": _get(record, "env", "device_name"),
        "trainable": _get(record, "params", "trainable"), "total": _get(record, "params", "total"),
        "trainable_pct": _get(record, "params", "trainable_pct"),
        "process_peak_bytes": _get(record, "memory", "process_peak_bytes"),
        "acc": _get(record, "mmlu", "acc"), "stderr": _get(record, "mmlu", "stderr"),
        "mmlu_n": _get(record, "mmlu", "n"), "mmlu_shots": _get(record, "mmlu", "shots"),
        "tokens_per_s": _get(record, "throughput", "tokens_per_s"),
        "step_p50_s": _get(record, "throughput", "step_time_s", "p50"),
        "est_bytes": _get(record, "estimate", "total_bytes"),
        "est_error_pct": _get(record, "estimate", "error_pct"),
        "wall_s": record.get("wall_s"), "started_at": record.get("started_at"),
        "loss": list(record.get("loss") or []),
    }
    for phase in PHASES:
        row[f"{phase}_peak_bytes"] = _get(record, "memory", phase, "peak_bytes")
    return row


def env_summary(records: list) -> dict:
    """The environment of one source: each key's distinct values, in first-seen order."""
    seen = {}
    for record in records:
        env = record.get("env") or {}
        flat = {k: v for k, v in env.items() if k != "packages"}
        flat.update({f"packages.{k}": v for k, v in (env.get("packages") or {}).items()})
        for key, value in flat.items():
            values = seen.setdefault(key, [])
            if str(value) not in values:
                values.append(str(value))
    return {key: " | ".join(values) for key, values in seen.items()}


def default_labels(sources: list) -> list:
    """Each source's directory name; made unique with the parent's name, then an index."""
    dirs = [Path(s) if Path(s).is_dir() else Path(s).parent for s in sources]
    labels = [d.resolve().name or str(d) for d in dirs]
    if len(set(labels)) < len(labels):
        labels = [f"{d.resolve().parent.name}/{d.resolve().name}" for d in dirs]
    if len(set(labels)) < len(labels):
        labels = [f"{i + 1}:{label}" for i, label in enumerate(labels)]
    return labels


def load(*, sources: list, labels=None, skip_bad_lines: bool = False) -> Loaded:
    """Read every source; raise BenchError for a bad source unless skipping bad lines."""
    if not sources:
        raise BenchError("no result sources given; name at least one directory holding results.jsonl")
    if labels is None:
        labels = default_labels(sources)
    labels = [str(label) for label in labels]
    if len(labels) != len(sources):
        raise BenchError(f"got {len(labels)} labels for {len(sources)} sources; give one label per source")
    if len(set(labels)) != len(labels):
        raise BenchError(f"source labels must be unique, got {labels}")
    rows, envs, problems = [], {}, []
    for source, label in zip(sources, labels):
        records, bad = store.read(source, skip_bad_lines=skip_bad_lines)
        rows.extend(flatten(record, source=label) for record in records)
        envs[label] = env_summary(records)
        problems.extend(f"[{label}] {line}" for line in bad)
    runs = pd.DataFrame(rows, columns=list(COLUMNS))
    return Loaded(runs=runs, envs=envs, problems=problems)
