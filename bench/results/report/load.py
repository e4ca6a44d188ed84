"""Result sources -> one pandas DataFrame of runs, plus each source's environment.

A source is a directory holding results.jsonl (or the file itself). Each is read with
bench.results.store.read, so a corrupt line is named by number; with skip_bad_lines the good lines
are kept and the problems travel with the data so the page can show them.

`frame()` flattens records with pandas.json_normalize: one row per run, one column per leaf,
named by its dotted path in the record (`memory.train.peak_bytes`, `mmlu.categories.stem`).
A block a record lacks (a v1 record has no `heldout`) or holds as null is not measured: its
columns are NaN there. The export writes this frame; the report adds the short names in
ALIASES. Figures stay in base units here (bytes, seconds); charts convert them for display.

Records with random weights (shape models, bench.models.random_weights) keep their memory and speed, but
their benefit blocks (`mmlu`, `heldout`, `tasks`) are dropped here, before any chart or the paired
statistics can read them, and the page says so: `runs.random_weights` marks those rows.
"""

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.models.random_weights import WHY, random_weights
from bench.results import store
from bench.util.errors import BenchError

# Report column -> dotted path in the record (the first one present wins).
ALIASES = {
    "device": ("memory.device",), "device_name": ("env.device_name",),
    "seed": ("seed", "config.seed"), "group": ("group_key", "compare_key"),
    "trainable": ("params.trainable",), "total": ("params.total",), "trainable_pct": ("params.trainable_pct",),
    "load_peak_bytes": ("memory.load.peak_bytes",), "train_peak_bytes": ("memory.train.peak_bytes",),
    "eval_peak_bytes": ("memory.eval.peak_bytes",), "process_peak_bytes": ("memory.process_peak_bytes",),
    "acc": ("mmlu.acc",), "stderr": ("mmlu.stderr",), "mmlu_n": ("mmlu.n",), "mmlu_shots": ("mmlu.shots",),
    "heldout_loss": ("heldout.loss",),
    "tokens_per_s": ("throughput.tokens_per_s",), "step_p50_s": ("throughput.step_time_s.p50",),
    "est_bytes": ("estimate.total_bytes",), "est_error_pct": ("estimate.error_pct",),
}
# Top-level fields every report row has, even when no record fills them.
TOP = ("source", "run_id", "model", "method", "status", "error", "wall_s", "started_at", "loss")


@dataclass
class Loaded:
    """What a report is built from: one row per run, one environment per source."""

    runs: pd.DataFrame
    envs: dict = field(default_factory=dict)  # label -> {key: "value | other value"}
    problems: list = field(default_factory=list)  # one readable line per skipped bad line
    sources: list = field(default_factory=list)  # [(label, records, root directory)] for bench.results.compare
    notes: list = field(default_factory=list)  # what the page must say about the runs it shows


def _drop_null_parents(wide: pd.DataFrame) -> pd.DataFrame:
    """A parent column that json_normalize keeps only because some record holds the block as
    null (`throughput` beside `throughput.tokens_per_s`) is dropped: its leaves say the same."""
    parents = [c for c in wide.columns if any(o.startswith(c + ".") for o in wide.columns) and wide[c].isna().all()]
    return wide.drop(columns=parents)


def frame(records: list, *, source=None) -> pd.DataFrame:
    """One row per record, one column per leaf (dotted path); lists stay lists."""
    wide = _drop_null_parents(pd.json_normalize(records, sep=".") if records else pd.DataFrame())
    if source is not None:
        wide = wide.copy()  # json_normalize leaves one block per column: consolidate before inserting
        wide.insert(0, "source", source)
    return wide


def combine(frames: list) -> pd.DataFrame:
    """Several sources' frames as one: columns are the union, in first-seen order."""
    return _drop_null_parents(pd.concat(frames, ignore_index=True, sort=False))


def with_aliases(wide: pd.DataFrame) -> pd.DataFrame:
    """The wide frame plus the report's short columns (ALIASES, TOP); NaN where not measured."""
    runs = wide.copy()
    for name in TOP:
        if name not in runs:
            runs[name] = None
    for name, paths in ALIASES.items():
        present = [p for p in paths if p in runs]
        runs[name] = runs[present[0]] if present else float("nan")
        for other in present[1:]:
            runs[name] = runs[name].fillna(runs[other])
    runs["loss"] = [list(v) if isinstance(v, list) else [] for v in runs["loss"]]
    return runs


def target_tasks(runs) -> list:
    """Task names with a measured accuracy (`tasks.<name>.acc`), target tasks first."""
    names = [c[len("tasks."):-len(".acc")] for c in runs.columns
             if c.startswith("tasks.") and c.endswith(".acc") and runs[c].notna().any()]
    role = {n: runs.get(f"tasks.{n}.role") for n in names}
    return sorted(names, key=lambda n: role[n] is None or "target" not in set(role[n].dropna()))


def env_summary(wide: pd.DataFrame) -> dict:
    """The environment of one source: each env key's distinct values, in first-seen order."""
    summary = {}
    for column in (c for c in wide.columns if c.startswith("env.")):
        values = list(dict.fromkeys(str(v) for v in wide[column] if not (isinstance(v, float) and v != v)))
        summary[column[len("env."):]] = " | ".join(values)
    return summary


def default_labels(sources: list) -> list:
    """Each source's directory name; made unique with the parent's name, then an index."""
    dirs = [Path(s) if Path(s).is_dir() else Path(s).parent for s in sources]
    labels = [d.resolve().name or str(d) for d in dirs]
    if len(set(labels)) < len(labels):
        labels = [f"{d.resolve().parent.name}/{d.resolve().name}" for d in dirs]
    if len(set(labels)) < len(labels):
        labels = [f"{i + 1}:{label}" for i, label in enumerate(labels)]
    return labels


def read_sources(*, sources: list, labels=None, skip_bad_lines: bool = False) -> list:
    """[(label, records, problems)] for every source; BenchError for a bad one or bad labels."""
    if not sources:
        raise BenchError("no result sources given; name at least one directory holding results.jsonl")
    labels = [str(label) for label in (labels if labels is not None else default_labels(sources))]
    if len(labels) != len(sources):
        raise BenchError(f"got {len(labels)} labels for {len(sources)} sources; give one label per source")
    if len(set(labels)) != len(labels):
        raise BenchError(f"source labels must be unique, got {labels}")
    return [(label, *store.read(source, skip_bad_lines=skip_bad_lines)) for source, label in zip(sources, labels)]


BENEFIT_BLOCKS = {"mmlu": None, "heldout": None, "tasks": {}}


def without_benefit(records: list) -> tuple:
    """(records, how many had random weights): those records keep everything but their benefit
    blocks, so no accuracy chart, benefit chart or verdict downstream can read them."""
    out = [dict(r, **BENEFIT_BLOCKS) if random_weights(r) else r for r in records]
    return out, sum(random_weights(r) for r in records)


def load(*, sources: list, labels=None, skip_bad_lines: bool = False) -> Loaded:
    """Read every source into one runs frame; raise BenchError for a bad source unless skipping bad lines."""
    frames, envs, problems, raw, notes, flags = [], {}, [], [], [], []
    read = read_sources(sources=sources, labels=labels, skip_bad_lines=skip_bad_lines)
    for source, (label, records, bad) in zip(sources, read):
        records, shapes = without_benefit(records)
        if shapes:
            notes.append(f"[{label}] {shapes} run(s) with {WHY}: shown for memory, speed and the planner, "
                         "left out of every accuracy and benefit chart and of the paired verdicts.")
        flags += [random_weights(r) for r in records]
        wide = frame(records, source=label)
        frames.append(wide)
        envs[label] = env_summary(wide)
        problems.extend(f"[{label}] {line}" for line in bad)
        raw.append((label, records, Path(source) if Path(source).is_dir() else Path(source).parent))
    runs = with_aliases(combine(frames))
    runs["random_weights"] = flags
    return Loaded(runs=runs, envs=envs, problems=problems, sources=raw, notes=notes)
