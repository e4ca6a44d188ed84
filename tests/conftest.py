import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def run_cli(*args, timeout=600, env=None):
    """run_bench.py in a subprocess, as a user runs it."""
    return subprocess.run([sys.executable, str(ROOT / "run_bench.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def tiny_path():
    from bench.models import resolve
    return resolve("tiny-llama")


def one_clean_error_line(result) -> str:
    """Bad input: exit 2, exactly one line on stderr, no traceback."""
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("ftbench: error: ")
    return lines[0]


FAULT_TALLY = {"tried": 0, "lost": 0}


def stored_records(out) -> list:
    """Every line of OUT/results.jsonl that parses as JSON (read here, not through bench.store:
    the tally must not trust the code it checks). A torn or corrupt line is not a record."""
    path = Path(out) / "results.jsonl"
    if not path.is_file():
        return []
    found = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            pass
    return found


def count_fault(out, *, expected: int, kept=()) -> list:
    """Tally one injected fault and the records it lost, by reading the store after it: OUT must
    hold `expected` records, and every record in `kept` (finished before the fault) unchanged.
    Returns the records found; call it before asserting on them, so a loss is counted even when
    the test then fails."""
    found = stored_records(out)
    FAULT_TALLY["tried"] += 1
    FAULT_TALLY["lost"] += lost_records(found, expected=expected, kept=kept)
    return found


def lost_records(found: list, *, expected: int, kept=()) -> int:
    """Records lost: fewer found than expected, or a kept record missing or changed."""
    missing = Counter(json.dumps(r, sort_keys=True) for r in kept)
    missing.subtract(json.dumps(r, sort_keys=True) for r in found)
    return max(expected - len(found), sum(n for n in missing.values() if n > 0), 0)


def pytest_terminal_summary(terminalreporter):
    if FAULT_TALLY["tried"]:
        terminalreporter.write_line(
            f"fault injection: {FAULT_TALLY['tried']} faults tried, {FAULT_TALLY['lost']} records lost")
