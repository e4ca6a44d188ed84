import os
import subprocess
import sys
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


def count_fault(*, lost: int) -> None:
    """Each fault-injection test reports how many finished records it lost (must be 0)."""
    FAULT_TALLY["tried"] += 1
    FAULT_TALLY["lost"] += lost


def pytest_terminal_summary(terminalreporter):
    if FAULT_TALLY["tried"]:
        terminalreporter.write_line(
            f"fault injection: {FAULT_TALLY['tried']} faults tried, {FAULT_TALLY['lost']} records lost")
