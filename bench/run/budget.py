"""The floor under a CPU memory budget (`--max-memory`): what a run needs before its first phase.

On CPU the launcher enforces the budget as the child's data-segment limit (RLIMIT_DATA, see
bench.run.launcher). Under what the interpreter needs to import the stack, the child cannot even
start: it dies in the dynamic loader (exit 127, "cannot map zero-fill pages"), in a C extension's
abort, or with a Python SystemError, and never reaches the code that records an oom. Such a
budget is bad input. The floor is the data segment (VmData) of a child that imports what the
worker imports, measured once per invocation, on this machine and this stack.

Measured while writing this (torch 2.13.0+cpu, transformers 5.24.0, peft 0.21.2, bitsandbytes
0.50.2): the floor read 477 MiB; a child limited to 475 MiB aborted while importing, at 477 MiB
it imported and then failed on exit, at 478 MiB it ran. So the floor is a lower bound of a
budget that can work, not a promise that one just above it will; above it, running out is an
`oom` record. No torch import here: the measurement runs in a child.

With no budget given on a CPU run, a default applies: DEFAULT_SHARE of the memory the machine has
available when the matrix starts (psutil's `available`: free plus reclaimable cache), divided by
the runs in flight at once. Without it a run that cannot fit grows until the kernel's OOM killer
ends it (or another process) and the machine stalls on the way; under it the run's allocation
fails inside the child and is recorded as `oom`. The share leaves the driver, the desktop and
the page cache room. Before launching, a run whose planner floor already exceeds its budget is
named (`over_budget`).
"""

import json
import subprocess
import sys
from functools import lru_cache

from bench.util.errors import BenchError
from bench.util.units import fmt_bytes, parse_size

DEFAULT_SHARE = 0.85  # of available memory at start; 15% stays for the driver and the rest of the machine

WORKER_IMPORTS = "import torch, transformers, peft, bitsandbytes, bench.run.worker"
_PROBE = (WORKER_IMPORTS + "\nimport json\nstatus = dict(l.split(':', 1) for l in open('/proc/self/status'))"
          "\nprint(json.dumps({k: int(status[k].split()[0]) * 1024 for k in ('VmData', 'VmRSS')}))")


@lru_cache(maxsize=1)
def startup_bytes() -> dict:
    """{"VmData": bytes, "VmRSS": bytes} of a fresh child with the worker's imports done."""
    from bench.run.launcher import child_env
    from bench.util.paths import REPO_ROOT

    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=child_env(),
                          cwd=REPO_ROOT, timeout=300)
    if done.returncode != 0:
        raise BenchError(f"cannot measure the memory a run needs to start: the import probe exited "
                         f"{done.returncode}: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def check(specs: list, *, on_cpu) -> None:
    """Refuse a CPU budget under the measured start-up floor, naming it. `on_cpu(spec)` says
    whether the budget will be the data-segment limit (bench.run.hardware.runs_on_cpu)."""
    budgets = {spec["max_memory"] for spec in specs if spec.get("max_memory") and on_cpu(spec)}
    if not budgets:
        return
    smallest = min(budgets, key=parse_size)
    floor = startup_bytes()["VmData"]
    if parse_size(smallest) < floor:
        need = -(-floor // 2**20)
        raise BenchError(f"--max-memory {smallest} is below the {need} MiB a run needs just to start on this CPU "
                         f"(data segment of python with torch, transformers, peft and bitsandbytes imported, "
                         f"measured now in a child); valid choices: {need}MiB or more, or no --max-memory")


def default_budget(*, concurrent: int = 1, available_bytes: int | None = None) -> dict:
    """{"bytes", "source"}: the budget of a CPU run given none, DEFAULT_SHARE of `available_bytes`
    (default: available now) shared among `concurrent` runs."""
    if available_bytes is None:
        import psutil

        available_bytes = psutil.virtual_memory().available
    share = int(DEFAULT_SHARE * available_bytes) // max(1, concurrent)
    per = f" / {concurrent} runs at once" if concurrent > 1 else ""
    return {"bytes": share, "source": f"the default budget {fmt_bytes(share)}, {DEFAULT_SHARE:.0%} of the "
                                      f"{fmt_bytes(available_bytes)} available at start{per}"}


def apply_default(specs: list, *, on_cpu, concurrent: int = 1, available_bytes: int | None = None):
    """Give each CPU spec without max_memory the default budget (spec["memory_budget"], a
    non-work field, so spec hashes stay what they were); the budget, or None if no spec needed it."""
    needing = [spec for spec in specs if not spec.get("max_memory") and on_cpu(spec)]
    if not needing:
        return None
    budget = default_budget(concurrent=concurrent, available_bytes=available_bytes)
    for spec in needing:
        spec["memory_budget"] = dict(budget)
    return budget


def run_budget(spec: dict, *, device: str):
    """{"bytes", "source"} of the data-segment limit a run gets on `device`, or None (CUDA runs'
    budget is the worker's memory fraction; a CPU run with neither budget has no limit)."""
    if device != "cpu":
        return None
    if spec.get("max_memory"):
        return {"bytes": parse_size(spec["max_memory"]), "source": f"--max-memory {spec['max_memory']}"}
    return spec.get("memory_budget")


def planner_floor(spec: dict, *, device: str):
    """The planner's predicted peak (bytes) of a run, or None where it cannot price the model."""
    import json
    from pathlib import Path

    from bench.plan.for_run import predict

    try:
        config = json.loads((Path(spec["model_path"]) / "config.json").read_text())
        return predict(spec, config=config, device=device)["total_bytes"]  # before the run: no baseline yet
    except (BenchError, OSError, KeyError, TypeError, ValueError):
        return None


def over_budget(specs: list, *, device_of) -> list:
    """One line per CPU run whose planner floor already exceeds its budget."""
    lines = []
    for spec in specs:
        device = device_of(spec)
        budget = run_budget(spec, device=device)
        floor = planner_floor(spec, device=device) if budget else None
        if floor is not None and floor > budget["bytes"]:
            lines.append(f"{spec['model']} x {spec['method']}: the planner's floor {fmt_bytes(floor)} exceeds "
                         f"{budget['source']}; expect an oom record")
    return lines
