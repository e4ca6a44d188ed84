"""Paired comparison of methods on the same questions: `run_bench.py compare` and its statistics.

stats.py    pure numbers: paired bootstrap interval, exact McNemar, questions needed, verdict
runs.py     ok records with their directory, and per-question scores from predictions files
pairs.py    which runs pair (same seed, base with every seed, precision and data must match) -> rows
summary.py  learn_forget (target gain vs MMLU change against base) and seed_summary, for report and gate
table.py    text rendering; command.py the CLI, the only module that prints
"""

# Exported lazily, so registering the sub-command (bench.cli imports command.py) imports no numpy.
_EXPORTS = {
    "Comparison": "pairs", "Row": "pairs", "Unmatched": "pairs", "compare_runs": "pairs",
    "Run": "runs", "as_runs": "runs", "load_runs": "runs",
    "learn_forget": "summary", "seed_summary": "summary",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bench.results.compare' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"bench.results.compare.{_EXPORTS[name]}"), name)
