"""The planner: predict training memory from a model config alone (no torch import).

Public API: `estimate(...)` (one run's predicted peak and its terms), `bench.plan.fit.grid(...)`
(the planner's rows), `bench.plan.presets.load(name_or_path)`.
"""

from bench.plan.predict import estimate

__all__ = ["estimate"]
