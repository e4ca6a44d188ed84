"""The environment a run came from: versions, hardware, git state. Enough to reproduce it."""

import os
import platform
import socket
import subprocess
from importlib import metadata

from bench.util.paths import REPO_ROOT

PACKAGES = ("ftbench", "torch", "transformers", "peft", "bitsandbytes", "lm_eval", "accelerate", "datasets",
            "safetensors", "tokenizers", "numpy", "pandas", "pyecharts", "psutil", "nvidia-ml-py")


def versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state() -> dict:
    def git(*args):
        result = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10)
        return result.stdout.strip() if result.returncode == 0 else None

    try:
        sha = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"git_sha": None, "git_dirty": None}
    return {"git_sha": sha, "git_dirty": None if dirty is None else bool(dirty)}


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_sizes(torch, cuda: bool) -> dict:
    """The machine's memory, for charts that draw what fits: RAM, and the GPU's memory on CUDA."""
    import psutil

    sizes = {"ram_bytes": psutil.virtual_memory().total}
    if cuda:
        sizes["gpu_memory_bytes"] = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    return sizes


def capture() -> dict:
    """Called inside the child, where torch is already imported."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions(),
        "torch_cuda": torch.version.cuda,
        "cuda_available": cuda,
        "device_name": torch.cuda.get_device_name(torch.cuda.current_device()) if cuda else cpu_model(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "hostname": socket.gethostname(),
        **memory_sizes(torch, cuda),
        "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
        **git_state(),
    }
