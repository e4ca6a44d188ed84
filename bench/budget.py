"""The floor under a CPU memory budget (`--max-memory`): what a run needs before its first phase.

On CPU the launcher enforces the budget as the child's data-segment limit (RLIMIT_DATA, see
bench.launcher). Under what the interpreter needs to import the stack, the child cannot even
start: it dies in the dynamic loader (exit 127, "cannot map zero-fill pages"), in a C extension's
abort, or with a Python SystemError, and never reaches the code that records an oom. Such a
budget is bad input. The floor is the data segment (VmData) of a child that imports what the
worker imports, measured once per invocation, on this machine and this stack.

Measured while writing this (torch 2.13.0+cpu, transformers 5.24.0, peft 0.21.2, bitsandbytes
0.50.2): the floor read 477 MiB; a child limited to 475 MiB aborted while importing, at 477 MiB
it imported and then failed on exit, at 478 MiB it ran. So the floor is a lower bound of a
budget that can work, not a promise that one just above it will; above it, running out is an
`oom` record. No torch import here: the measurement runs in a child.
"""

import json
import subprocess
import sys
from functools import lru_cache

from bench.errors import BenchError
from bench.units import parse_size

WORKER_IMPORTS = "import torch, transformers, peft, bitsandbytes, bench.worker"
_PROBE = (WORKER_IMPORTS + "\nimport json\nstatus = dict(l.split(':', 1) for l in open('/proc/self/status'))"
          "\nprint(json.dumps({k: int(status[k].split()[0]) * 1024 for k in ('VmData', 'VmRSS')}))")


@lru_cache(maxsize=1)
def startup_bytes() -> dict:
    """{"VmData": bytes, "VmRSS": bytes} of a fresh child with the worker's imports done."""
    from bench.launcher import child_env
    from bench.paths import REPO_ROOT

    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=child_env(),
                          cwd=REPO_ROOT, timeout=300)
    if done.returncode != 0:
        raise BenchError(f"cannot measure the memory a run needs to start: the import probe exited "
                         f"{done.returncode}: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def check(specs: list, *, on_cpu) -> None:
    """Refuse a CPU budget under the measured start-up floor, naming it. `on_cpu(spec)` says
    whether the budget will be the data-segment limit (bench.hardware.runs_on_cpu)."""
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
