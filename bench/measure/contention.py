"""How contended the machine was over a window (the timed training steps): the 1-minute load
average against the cores at both ends, the CPU time other processes used, and the hypervisor's
steal time. Measurement only: nothing here prints, writes or decides (bench.results.gate.contention
decides what counts as contended). Usage:

    with track(world=ranks.size) as figures:
        ...  # the timed steps
    figures["others_busy_cores"]

`others_busy_cores` is the machine's busy CPU time over the window (/proc/stat: every state but
idle, iowait and steal) minus this process's own CPU time (times the number of ranks, which run
alike), divided by the window's wall time: the cores other work kept busy while the run was
timed. A busy loop on one core reads about 1.0. Where /proc/stat cannot be read (not Linux), it
and `steal_pct` are None and the load average alone says something.
"""

import os
import time
from contextlib import contextmanager
from pathlib import Path

_STAT = Path("/proc/stat")
# /proc/stat "cpu" columns: user nice system idle iowait irq softirq steal (guest time is already in user)
_IDLE, _IOWAIT, _STEAL = 3, 4, 7


def cpu_jiffies() -> list | None:
    """The machine's first eight /proc/stat "cpu" counters (clock ticks since boot), or None."""
    try:
        with open(_STAT) as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    return [int(v) for v in fields[1:9]]


def machine_cores() -> int:
    """The CPUs /proc/stat sums over (its cpuN lines); os.cpu_count() where it cannot be read."""
    try:
        with open(_STAT) as handle:
            count = sum(1 for line in handle if line.startswith("cpu") and line[3:4].isdigit())
    except OSError:
        count = 0
    return count or os.cpu_count() or 1


def load_1min() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def own_cpu_s() -> float:
    """User plus system CPU time of this process, all its threads."""
    times = os.times()
    return times.user + times.system


def sample() -> dict:
    return {"wall": time.monotonic(), "load": load_1min(), "jiffies": cpu_jiffies(), "own_s": own_cpu_s()}


def window(start: dict, end: dict, *, world: int = 1) -> dict:
    """The figures between two samples (module docstring)."""
    wall = max(end["wall"] - start["wall"], 1e-9)
    figures = {"cores": os.cpu_count(), "load_avg_start": start["load"], "load_avg_end": end["load"],
               "others_busy_cores": None, "steal_pct": None, "wall_s": wall}
    if start["jiffies"] is None or end["jiffies"] is None:
        return figures
    delta = [b - a for a, b in zip(start["jiffies"], end["jiffies"])]
    total = sum(delta)
    if total <= 0:
        return figures
    hz = os.sysconf("SC_CLK_TCK")
    busy_s = (total - delta[_IDLE] - delta[_IOWAIT] - delta[_STEAL]) / hz
    own_s = (end["own_s"] - start["own_s"]) * world
    figures["others_busy_cores"] = max(busy_s - own_s, 0.0) / wall
    figures["steal_pct"] = 100 * delta[_STEAL] / total
    figures["machine_cores"] = machine_cores()
    return figures


@contextmanager
def track(*, world: int = 1):
    """Yield a dict filled with the window's figures when the block ends (even on an exception)."""
    figures = {}
    start = sample()
    try:
        yield figures
    finally:
        figures.update(window(start, sample(), world=world))
