"""Parse and format sizes. Figures are stored in bytes and converted only for display."""

import re

from bench.util.errors import BenchError

_UNITS = {
    "": 1, "B": 1,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text) -> int:
    """'24GB' -> 24_000_000_000, '1.5GiB' -> 1610612736. Plain numbers are bytes."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text <= 0:
            raise BenchError(f"memory size must be positive, got {text!r}")
        return int(text)
    match = _SIZE.match(str(text))
    unit = match.group(2).upper() if match else None
    if unit not in _UNITS:
        raise BenchError(
            f"cannot parse memory size {text!r}; use a number with a unit such as 24GB, 80GiB or 512MiB"
        )
    value = int(float(match.group(1)) * _UNITS[unit])
    if value <= 0:  # '0.5B' too: positive as written, 0 whole bytes
        raise BenchError(f"memory size must be positive, got {text!r}")
    return value


GIB = 2**30


def gb(n_bytes) -> float:
    """Bytes to decimal gigabytes (10**9), the unit GPU vendors sell memory in."""
    return n_bytes / 1e9


def gib(n_bytes) -> float:
    """Bytes to binary gibibytes (2**30): the unit of every chart and table, as the console's MiB."""
    return n_bytes / GIB


def gib_text(n_bytes) -> str:
    """'12.3 GiB': binary gibibytes to one place, as the planner's one-line verdicts print them."""
    return f"{gib(n_bytes):.1f} GiB"


def mib(n_bytes) -> float:
    """Bytes to binary mebibytes (2**20), the unit the worker's log and the calibration tables print."""
    return n_bytes / 2**20


def fmt_bytes(n_bytes) -> str:
    """Human-readable binary size for tables: '1.23 GiB', '512.0 MiB'."""
    if n_bytes is None:
        return "-"
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n_bytes) >= scale:
            return f"{n_bytes / scale:.2f} {unit}"
    return f"{int(n_bytes)} B"
