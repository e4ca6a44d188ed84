"""When a record counts as contended: its timed steps shared the machine, so its throughput says
as much about the neighbours as about the code. The gate calls such a pair's throughput
`inconclusive` (memory, parameters and accuracy are judged as usual).

The figures are the record's own (`contention`, measured by bench.measure.contention over the
timed steps, and `env.calibration.spread_pct`); the limits are gate tolerances, so a shared runner
can move them. A record from before contention was measured is not called contended.
Thresholds (bench.results.gate.tolerances), from runs on a 2-core VM (docs/gate.md, "Contention"):
- `contended_others_pct`: other processes kept more than this share of the cores busy over the
  timed steps (a busy loop on the second of 2 cores: 50%);
- `contended_steal_pct`: the hypervisor took more than this share of CPU time (steal);
- `contended_spread_pct`: the calibration's median repeat ran this much slower than its fastest;
- where /proc/stat was not readable, the 1-minute load average at the end of the timed steps
  above `contended_load_per_core` x cores.
"""

def _figure(record: dict, *path):
    value = record
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def record_contended(record: dict, tol: dict) -> str | None:
    """Why this one record was contended, or None."""
    cores = _figure(record, "contention", "machine_cores") or _figure(record, "contention", "cores")
    others = _figure(record, "contention", "others_busy_cores")
    if cores and others is not None and 100 * others / cores > tol["contended_others_pct"]:
        return f"other processes kept {others:.1f} of {cores} cores busy"
    steal = _figure(record, "contention", "steal_pct")
    if steal is not None and steal > tol["contended_steal_pct"]:
        return f"steal time {steal:.1f}%"
    spread = _figure(record, "env", "calibration", "spread_pct")
    if spread is not None and spread > tol["contended_spread_pct"]:
        return f"calibration repeats spread {spread:.0f}%"
    load = _figure(record, "contention", "load_avg_end")
    if others is None and cores and load is not None and load > tol["contended_load_per_core"] * cores:
        return f"load average {load:.1f} on {cores} cores"
    return None


def why_contended(records: list, tol: dict) -> str | None:
    """The first contended record's reason, with how many of `records` were contended; None if none was."""
    found = [why for why in (record_contended(r, tol) for r in records) if why]
    if not found:
        return None
    return found[0] + (f" ({len(found)} of {len(records)} records contended)" if len(records) > 1 else "")
