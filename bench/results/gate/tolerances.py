"""Gate tolerances: flat defaults, overridden by a TOML `[gate]` table and by KEY=VALUE flags.

The profile loader validates a profile's `[gate]` keys against DEFAULT_TOLERANCES, so this is
a flat dict of plain numbers. Parameter counts have no tolerance: they must match exactly.
"""

import math

from bench.util.errors import BenchError, choices_error

DEFAULT_TOLERANCES = {
    # memory.train.peak_bytes: the candidate's median may grow by this much (asv-style factor).
    "memory_pct": 5.0,
    # ... and by more than this many MiB: glibc keeps or returns a ~50 MiB logits block from run
    # to run, which moved tiny-llama's train peak by 6.7% (698 vs 745 MiB) with no code change.
    "memory_min_mib": 64.0,
    # throughput.tokens_per_s: the calibration-normalised median may drop by this much.
    "throughput_pct": 20.0,
    # mmlu.acc: a drop must exceed k * sqrt(se_b^2 + se_c^2) ...
    "accuracy_stderr_k": 2.0,
    # ... and this many questions' worth (each question is 1/mmlu.n).
    "accuracy_min_questions": 1.0,
    # repeats whose coefficient of variation exceeds this make memory/throughput "inconclusive".
    "cv_max_pct": 10.0,
    # a record counts as contended, and its throughput as "inconclusive", when over its timed steps
    # other processes kept more than this % of the cores busy (bench.results.gate.contention) ...
    "contended_others_pct": 25.0,
    # ... or the hypervisor stole more than this % of CPU time ...
    "contended_steal_pct": 5.0,
    # ... or its calibration's median repeat ran this % slower than its fastest ...
    "contended_spread_pct": 20.0,
    # ... or, where /proc/stat cannot be read, the 1-minute load average exceeded this x cores.
    "contended_load_per_core": 1.0,
}


def _number(key, value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise BenchError(f"{where}: gate tolerance {key} must be a number >= 0, got {value!r}")
    return float(value)


def validate_tolerances(overrides: dict, *, where: str = "gate tolerances") -> dict:
    """Overrides checked against the defaults: unknown keys and bad values raise BenchError."""
    out = {}
    for key, value in overrides.items():
        if key not in DEFAULT_TOLERANCES:
            raise choices_error(f"gate tolerance in {where}:", key, sorted(DEFAULT_TOLERANCES))
        out[key] = _number(key, value, where)
    return out


def read_toml_gate(path) -> dict:
    """The `[gate]` table of a TOML file (a profile or a file holding only `[gate]`)."""
    import tomllib

    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise BenchError(f"no tolerances file at {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BenchError(f"cannot read tolerances file {path}: {exc}") from None
    table = data.get("gate", {})
    if not isinstance(table, dict):
        raise BenchError(f"{path}: [gate] must be a table of tolerances")
    return validate_tolerances(table, where=str(path))


def parse_pair(text: str) -> dict:
    """'memory_pct=7.5' -> {'memory_pct': 7.5}."""
    key, sep, value = text.partition("=")
    if not sep:
        raise BenchError(f"--tolerance expects KEY=VALUE, got {text!r}")
    try:
        number = float(value)
    except ValueError:
        raise BenchError(f"--tolerance {key.strip()}: {value!r} is not a number") from None
    return validate_tolerances({key.strip(): number}, where="--tolerance")


def resolve_tolerances(*, file=None, pairs=()) -> dict:
    """Defaults, then the file's [gate] table, then each KEY=VALUE pair (last wins)."""
    tolerances = dict(DEFAULT_TOLERANCES)
    if file:
        tolerances.update(read_toml_gate(file))
    for pair in pairs:
        tolerances.update(parse_pair(pair))
    return tolerances
