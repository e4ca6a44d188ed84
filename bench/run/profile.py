"""Profiles: TOML files that hold only what differs from profiles/_defaults.toml.

A profile given by path may also be YAML (.yaml, .yml) with the same sections and keys, read with
PyYAML's safe loader and checked as strictly. (YAML 1.1 reads `1e-4` as text: write `1.0e-4`.)

load_profile() merges defaults <- profile file <- command-line overrides and validates the
result, collecting every problem into one BenchError. It never imports torch.
"""

import os
import tomllib
from pathlib import Path

from bench.results.schema import METHODS
from bench.util.errors import BenchError
from bench.util.paths import REPO_ROOT

PROFILES_DIR = REPO_ROOT / "profiles"
DEFAULTS = PROFILES_DIR / "_defaults.toml"

CHOICES = {
    ("run", "lr_schedule"): ("constant", "linear", "cosine"),
    ("run", "optimizer"): ("adamw_torch", "adamw_8bit", "paged_adamw", "paged_adamw_8bit"),
    ("run", "device"): ("auto", "cpu", "cuda"),
    ("run", "precision"): ("auto", "fp32", "bf16-true", "bf16-mixed", "fp16-mixed"),
    ("data", "format"): ("auto", "text", "prompt-completion", "alpaca", "chat", "sharegpt"),
    ("run", "strategy"): ("auto", "ddp", "fsdp"),
}
POSITIVE = {("run", "steps"), ("run", "batch_size"), ("run", "grad_accum"), ("run", "seq_len"),
            ("run", "lr"), ("run", "run_timeout_s"), ("run", "nproc"), ("lora", "r"), ("lora", "alpha"),
            ("eval", "batch_size")}


def available() -> list:
    """Profile names a user can pass to --profile."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml") if not p.stem.startswith("_"))


YAML_SUFFIXES = (".yaml", ".yml")


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        with open(path, "rb") as handle:
            loaded = yaml.safe_load(handle)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BenchError(f"profile {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    except OSError as exc:
        raise BenchError(f"cannot read profile {path}: {exc.strerror or exc}") from None
    if not isinstance(loaded, dict):
        raise BenchError(f"profile {path} must be a mapping of sections ([run], [data], ...), got "
                         f"{type(loaded).__name__}")
    return loaded


def _read(path: Path) -> dict:
    """A profile file's sections: YAML by its suffix, else TOML."""
    if path.suffix.lower() in YAML_SUFFIXES:
        return _read_yaml(path)
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BenchError(f"profile {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise BenchError(f"cannot read profile {path}: {exc.strerror or exc}") from None


def profile_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".toml", *YAML_SUFFIXES) or path.exists():
        if not path.is_file() or not os.access(path, os.R_OK):
            raise BenchError(f"profile file {path} does not exist or is not a readable file")
        return path
    candidate = PROFILES_DIR / f"{name_or_path}.toml"
    if not candidate.is_file() or name_or_path.startswith("_"):
        raise BenchError(f"unknown profile {name_or_path!r}; valid choices: {', '.join(available())}, "
                         "or a path to a .toml (or .yaml) file")
    return candidate


def defaults() -> dict:
    return _read(DEFAULTS)


def load_profile(name_or_path: str = "default", *, overrides: dict | None = None) -> dict:
    """The validated settings: {"run": {...}, "lora": {...}, "eval": {...}, "gate": {...}, "profile": name}."""
    path = profile_path(name_or_path)
    settings = defaults()
    settings["gate"] = _gate_defaults()
    errors = []
    _merge(settings, _read(path), errors, where=str(path))
    _merge(settings, overrides or {}, errors, where="command line")
    notes = _fit_warmup(settings["run"])  # even beside another error: a fitted warm-up is no second error
    errors += validate(settings)
    if errors:
        raise BenchError("; ".join(errors))
    settings["profile"] = path.stem
    settings["notes"] = notes  # what was adjusted, for the CLI to say (never part of a spec)
    return settings


def _fit_warmup(run: dict) -> list:
    """Warm-up is at most steps - 1, so a short run (`--steps 2`) still times a step: lower it, and
    say so. (The record says it too: spec warmup_steps and throughput.steps_measured.)"""
    steps, warmup = run["steps"], run["warmup_steps"]
    if not (_is_int(steps) and _is_int(warmup)) or steps < 1 or warmup < steps:
        return []
    run["warmup_steps"] = steps - 1
    return [f"run.warmup_steps = {warmup} is not below steps = {steps}: warm-up lowered to {steps - 1}; "
            f"throughput times the last step only"]


def _gate_defaults() -> dict:
    try:
        from bench.results.gate import DEFAULT_TOLERANCES
    except ImportError:
        return {}
    return dict(DEFAULT_TOLERANCES)


def _merge(settings: dict, update: dict, errors: list, *, where: str) -> None:
    """Overlay `update` on `settings`; unknown sections/keys and wrong types become errors."""
    for section, values in update.items():
        if section not in settings or not isinstance(values, dict):
            errors.append(f"{where}: unknown section [{section}]; "
                          f"valid sections: {', '.join(k for k in settings if k != 'profile')}")
            continue
        for key, value in values.items():
            base = settings[section]
            if key not in base:
                errors.append(f"{where}: unknown key {section}.{key}; valid keys: {', '.join(base)}")
            elif not _same_type(base[key], value):
                errors.append(f"{where}: {section}.{key} must be {_type_name(base[key])}, got {value!r}")
            else:
                base[key] = float(value) if isinstance(base[key], float) else value


def _same_type(default, value) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, list) and default and _is_int(default[0]):
        return isinstance(value, list) and all(_is_int(v) for v in value)
    if isinstance(default, list) or (isinstance(default, str) and isinstance(value, list)):
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return type(default) is type(value)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_name(default) -> str:
    if isinstance(default, list) and default and _is_int(default[0]):
        return "a list of integers"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            list: "a list of strings"}[type(default)]


def validate(settings: dict) -> list:
    """Range and choice checks that the types alone do not catch."""
    errors = []
    for (section, key), valid in CHOICES.items():
        if settings[section][key] not in valid:
            errors.append(f"unknown {section}.{key} {settings[section][key]!r}; valid choices: {', '.join(valid)}")
    for section, key in sorted(POSITIVE):
        if settings[section][key] <= 0:
            errors.append(f"{section}.{key} must be > 0, got {settings[section][key]}")
    run = settings["run"]
    if run["steps"] > 0 and not 0 <= run["warmup_steps"] < run["steps"]:
        errors.append(f"run.warmup_steps must be in [0, steps) = [0, {run['steps']}), got {run['warmup_steps']}")
    for method in run["methods"]:
        if method not in METHODS:
            errors.append(f"unknown method {method!r}; valid choices: {', '.join(METHODS)}")
    if run["nproc"] > 0 and run["batch_size"] % run["nproc"]:
        errors.append(f"run.batch_size ({run['batch_size']}) must be a multiple of run.nproc ({run['nproc']}): "
                      f"each rank takes an equal share of the global batch")
    if not run["methods"] or not run["models"]:
        errors.append("run.models and run.methods must each name at least one")
    for pair in run["skip"]:
        model, _, method = pair.rpartition(":")
        if not model or method not in METHODS:
            errors.append(f"run.skip entry {pair!r} is not a 'model:method' pair; valid methods: {', '.join(METHODS)}")
    if not run["seeds"] or len(set(run["seeds"])) != len(run["seeds"]) or min(run["seeds"]) < 0:
        errors.append(f"run.seeds must be distinct non-negative integers, at least one, got {run['seeds']}")
    if settings["data"]["heldout"] < 0:
        errors.append(f"data.heldout must be >= 0, got {settings['data']['heldout']}")
    if settings["eval"]["target_limit"] < 0:
        errors.append(f"eval.target_limit must be >= 0 (0 = all), got {settings['eval']['target_limit']}")
    if not 0 <= settings["data"]["max_unsupervised_pct"] <= 100:
        errors.append(f"data.max_unsupervised_pct must be in [0, 100], got {settings['data']['max_unsupervised_pct']}")
    if run["cpu_malloc_mmap_threshold"] < 0:
        errors.append("run.cpu_malloc_mmap_threshold must be >= 0 (0 = glibc default), "
                      f"got {run['cpu_malloc_mmap_threshold']}")
    if not 0 <= settings["lora"]["dropout"] < 1:
        errors.append(f"lora.dropout must be in [0, 1), got {settings['lora']['dropout']}")
    if run["max_memory"]:
        from bench.util.units import parse_size
        try:
            parse_size(run["max_memory"])
        except BenchError as exc:
            errors.append(str(exc))
    errors += _validate_eval(settings["eval"])
    errors += _validate_forget(settings["eval"], source=settings["data"]["source"])
    return errors


def _validate_forget(ev: dict, *, source: str) -> list:
    from bench.evaluate.targets.suite import SUITE

    unknown = [name for name in ev["forget"] if name not in SUITE]
    bad = [f"eval.forget: unknown task {unknown[0]!r}; valid choices: {', '.join(SUITE)}"] if unknown else []
    if ev["target"] and source in ev["forget"]:
        bad.append(f"eval.forget names {source!r}, which is also the target task of data.source {source!r}; "
                   "a task cannot measure both learning and forgetting: leave it out of eval.forget")
    if len(set(ev["forget"])) != len(ev["forget"]):
        bad.append(f"eval.forget names a task twice: {ev['forget']}")
    return bad + ([] if ev["forget_limit"] >= 0
                  else [f"eval.forget_limit must be >= 0 (0 = all), got {ev['forget_limit']}"])


def _validate_eval(ev: dict) -> list:
    try:
        from bench.evaluate.mmlu import validate as validate_eval
    except ImportError:
        validate_eval = None
    if validate_eval is None:
        bad = [] if 0 <= ev["shots"] <= 25 else [f"eval.shots must be in 0-25, got {ev['shots']}"]
        return bad + ([] if ev["limit"] >= 0 else [f"eval.limit must be > 0 (0 = all), got {ev['limit']}"])
    try:
        validate_eval(shots=ev["shots"], limit=ev["limit"] or None, tasks=ev["tasks"])
    except BenchError as exc:
        return [str(exc)]
    return []
