"""The regression gate: match runs across two results files and return a verdict per metric.

`run_bench.py gate BASELINE CANDIDATE` (see docs/gate.md). Read `compare.py` for how a
regression is decided (matching, the rule per metric, verdicts), `tolerances.py` for the
numbers, and `command.py` for the CLI, the only place that prints. Nothing here imports torch
except `calibrate.measure_calibration`, which the harness calls.
"""

from bench.results.gate.tolerances import DEFAULT_TOLERANCES, resolve_tolerances

__all__ = ["DEFAULT_TOLERANCES", "resolve_tolerances"]
