"""The regression gate: match runs across two results files and return a verdict per metric.

`run_bench.py gate BASELINE CANDIDATE` (see docs/gate.md). The gate never prints: `compare`
returns rows, `table` renders them, and `command` (the CLI) is the only place that prints.
Nothing here imports torch except `calibrate.measure_calibration`, which the harness calls.
"""

from bench.gate.tolerances import DEFAULT_TOLERANCES, resolve_tolerances

__all__ = ["DEFAULT_TOLERANCES", "resolve_tolerances"]
