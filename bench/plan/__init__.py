"""The planner: predict training memory from a model config alone (no torch import).

Public API: `estimate(*, config, method, **options)` (one run's predicted peak, its figures and
terms; options in bench.plan.options), `bench.plan.grid.grid(...)` (the planner's rows),
`bench.plan.frontier` (largest batch per sequence length), `bench.plan.presets.load(name_or_path)`.
Checked against published measurements in bench.plan.published; CPU constants calibrated
through the harness in bench.plan.calibration.
"""

from bench.plan.predict import estimate

__all__ = ["estimate"]
