"""What the driver can know of this machine's GPUs: torch decides, the driver never imports it.

torch is what runs the work, so torch says whether there is a GPU and what it is
(`is_available`, `device_count`, `get_device_properties`), asked in a child process once per
invocation and CUDA_VISIBLE_DEVICES value, or in this process when torch is already imported
(the worker, tests). A torch built without CUDA or ROCm (its version file says `cuda = None`,
`hip = None`) has no GPU to find, so the child is skipped. NVML is not asked here: a container
without libnvidia-ml (NVIDIA_DRIVER_CAPABILITIES=compute) still runs CUDA; NVML adds its
per-process figures and UUID in the worker when it loads, and the record says why when it does
not (bench.measure.nvml.Probe).

The device a run computes on is decided here once, before its child's environment is built
(`run_device`): the CPU-only settings (MALLOC_MMAP_THRESHOLD_, the data-segment limit from
--max-memory) go only to a run that computes on the CPU.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

_PROBE = "import json, torch\nfrom bench.run.hardware import describe\nprint(json.dumps(describe(torch)))"


def describe(torch) -> list:
    """[[name, compute capability major, minor, total bytes], ...] per GPU `torch` can use."""
    if not torch.cuda.is_available():
        return []
    devices = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        devices.append([props.name, int(props.major), int(props.minor), int(props.total_memory)])
    return devices


def cuda_devices() -> list:
    """[(name, compute capability major, minor, total bytes)] per GPU torch may use here
    (CUDA_VISIBLE_DEVICES honoured, in CUDA's order); [] without one."""
    return [tuple(d) for d in _cuda_devices(os.environ.get("CUDA_VISIBLE_DEVICES"))]


def _cuda_devices(visible_env: str | None) -> list:
    if "torch" in sys.modules:  # already paid for: ask it directly (its view was fixed at its CUDA init)
        return describe(sys.modules["torch"])
    return _ask_torch_in_child(visible_env)


@lru_cache(maxsize=4)
def _ask_torch_in_child(visible_env: str | None) -> list:
    if not torch_has_gpu_build():
        return []
    from bench.util.paths import REPO_ROOT

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env,
                              cwd=REPO_ROOT, timeout=120, stdin=subprocess.DEVNULL)
        return json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return []  # torch cannot even say: no GPU this driver can plan for; the worker asks again


def torch_has_gpu_build() -> bool:
    """Whether the installed torch was built for CUDA or ROCm, read from torch/version.py."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        return False
    try:
        text = (Path(spec.origin).parent / "version.py").read_text()
    except OSError:
        return True  # unknown: ask torch
    built = re.findall(r"^(cuda|hip)\s*(?::[^=]*)?=\s*(.+)$", text, flags=re.M)
    return not built or any(value.strip() != "None" for _, value in built)


def preflight(specs: list) -> None:
    """Driver-side checks for runs that execute on this machine (the local executor): a CUDA
    request without a GPU, more ranks than GPUs, bf16 on a GPU before sm80. The worker checks
    again where it runs (a Ray or Slurm node may differ from the driver)."""
    from bench.util.errors import BenchError

    devices = cuda_devices()
    for spec in specs:
        if spec["device"] == "cuda" and not devices:
            raise BenchError("device 'cuda' requested but torch sees no CUDA device here; valid choices: auto, cpu")
        if spec["device"] == "cpu" or not devices:
            continue
        if spec.get("nproc", 1) > len(devices):
            raise BenchError(f"--nproc {spec['nproc']} is more than the {len(devices)} visible GPU(s); "
                             f"valid choices: 1 to {len(devices)}")
        oldest = min(d[1] for d in devices)
        if spec["precision"] in ("bf16-true", "bf16-mixed") and oldest < 8:
            raise BenchError(f"precision {spec['precision']} needs bf16 (CUDA compute capability >= 8.0); this GPU is "
                             f"{oldest}.x; valid choices here: auto, fp32, fp16-mixed")


def run_device(spec: dict) -> str:
    """"cpu" or "cuda": where a run started on this machine computes. auto is cuda when torch
    sees a GPU here, as the worker resolves it (bench.training.precision.resolve_device)."""
    if spec["device"] == "auto":
        return "cuda" if cuda_devices() else "cpu"
    return spec["device"]


def runs_on_cpu(spec: dict) -> bool:
    """Whether a run started here computes on the CPU: decides whether a memory budget is the
    child's data-segment limit (CPU) or a CUDA memory fraction (the worker's)."""
    return run_device(spec) == "cpu"
