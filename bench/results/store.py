"""results.jsonl: append whole records atomically, read them back strictly.

Appends take an exclusive flock on `<dir>/.results.lock`, write one complete line with a
single os.write on an O_APPEND descriptor, then fsync, so a killed process leaves whole
lines only and two ftbench processes never interleave. Readers name a corrupt line by
number; with skip_bad_lines they return the good ones and the problems.
"""

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path

from bench.results.schema import upgrade
from bench.util.errors import BenchError

RESULTS = "results.jsonl"
LOCK = ".results.lock"


def results_path(source) -> Path:
    """A results file, or a directory holding results.jsonl."""
    path = Path(source)
    if path.is_dir():
        path = path / RESULTS
    if not path.exists():
        raise BenchError(f"no results file at {path}")
    return path


@contextmanager
def locked(out_dir):
    """Exclusive lock on an output directory, held across read-modify-append sequences."""
    out_dir = Path(out_dir)
    fd = os.open(out_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def append(out_dir, record: dict) -> None:
    """Append one record as one line, atomically and durably."""
    line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
    out_dir = Path(out_dir)
    with locked(out_dir):
        fd = os.open(out_dir / RESULTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):  # a short write (disk full): cut it back off
                os.ftruncate(fd, os.lseek(fd, 0, os.SEEK_END) - written)
                raise OSError(f"short write to {out_dir / RESULTS}: {written} of {len(line)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)


def read(source, *, skip_bad_lines: bool = False):
    """Records from a results file or directory, upgraded to the current schema.

    Returns (records, problems). Without skip_bad_lines the first bad line raises a
    BenchError naming its line number; with it, bad lines are listed in `problems`.
    """
    path = results_path(source)
    records, problems = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(upgrade(json.loads(line), where=f"{path}:{number}"))
            except (ValueError, BenchError) as exc:
                message = (str(exc) if isinstance(exc, BenchError)
                           else f"{path}:{number}: corrupt line ({exc.__class__.__name__})")
                if not skip_bad_lines or "newer than this ftbench" in message:
                    hint = "" if skip_bad_lines else " (use --skip-bad-lines to report the other lines)"
                    raise BenchError(message + hint) from None
                problems.append(message)
    if not records and not problems:
        raise BenchError(f"{path} holds no records")
    return records, problems
