"""Assemble run records. The skeleton carries every top-level key, so a run that failed
anywhere, even before its child started, is still a complete, valid record."""

import socket
from datetime import datetime, timezone

from bench.models.random_weights import is_shape
from bench.results.schema import SCHEMA_VERSION

_IDENTITY = ("run_id", "spec_hash", "compare_key", "group_key", "model", "model_path", "method", "seed")


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def skeleton(spec: dict, *, status: str = "ok", error: str | None = None) -> dict:
    config = {k: v for k, v in spec.items() if k not in ("run_id", "spec_hash", "compare_key", "group_key")}
    return {
        "schema_version": SCHEMA_VERSION,
        **{key: spec.get(key) for key in _IDENTITY},
        "status": status, "error": error,
        "started_at": now_iso(), "finished_at": None, "wall_s": None, "host": socket.gethostname(),
        "params": {"trainable": None, "total": None, "trainable_pct": None},
        "memory": {"device": spec.get("device", "cpu"), "baseline_bytes": None, "process_peak_bytes": None,
                   "load": None, "train": None, "eval": None},
        "precision": None, "data": None, "heldout": None,
        "throughput": None, "loss": [], "mmlu": None, "tasks": {}, "estimate": None,
        # a shape model (bench.models.shape) has seeded random weights: costs measured, benefit never
        "weights": "random" if is_shape(spec.get("model")) else "checkpoint",
        "shape": None, "eval_skipped": None, "contention": None,
        "config": config, "env": {},
    }
