import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def run_cli(*args, timeout=600, env=None, stub=None):
    """run_bench.py in a subprocess, as a user runs it. With `stub` ({method: ok|hang|real}) each
    run's child is tests.stub_worker (tests.cli_runner); with a memory budget among the arguments,
    the CLI takes the start-up floor measured once for the session (startup_floor)."""
    return subprocess.run(cli_command(*args, stub=stub), capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=cli_env(args, env=env, stub=stub))


def cli_command(*args, stub=None) -> list:
    budgeted = any(str(a) in ("--max-memory", "--memory") for a in args)
    entry = ["-m", "tests.cli_runner"] if stub is not None or budgeted else [str(ROOT / "run_bench.py")]
    return [sys.executable, *entry, *map(str, args)]


def cli_env(args, *, env=None, stub=None) -> dict:
    extra = dict(env or {})
    if stub is not None:
        extra["FTBENCH_STUB"] = json.dumps(stub)
    if any(str(a) in ("--max-memory", "--memory") for a in args):
        extra["FTBENCH_TEST_STARTUP"] = json.dumps(startup_bytes())
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            **extra}


def startup_bytes() -> dict:
    """The start-up floor (bench.run.budget), measured once per session: a child importing the stack."""
    from bench.run import budget
    return budget.startup_bytes()


@pytest.fixture(scope="session")
def startup_floor() -> int:
    """VmData bytes a run needs just to start, on this machine and stack. Memory budgets in the
    tests are this plus what the test needs above it, never a figure tuned to one machine."""
    return startup_bytes()["VmData"]


@pytest.fixture(scope="session")
def tiny_path():
    from bench.models import resolve
    return resolve("tiny-llama")


# The session's one real smoke matrix, evaluation on, at tiny limits: every phase of the child
# (load, train, breakdown, held-out loss, target task, MMLU, prediction files), the report and
# the trackers, run once and read by the CLI, breakdown, tracker, report and distributed tests.
SMOKE_TRAINING = ["--profile", "smoke", "--steps", "3", "--heldout", "8"]  # what another test may repeat to compare
SMOKE_RUN = [*SMOKE_TRAINING, "--methods", "base", "full", "lora", "qlora", "--target-limit", "4", "--mmlu-limit", "1"]
TRACKERS = ("mlflow", "tensorboard")


@dataclass
class SmokeRun:
    out: Path
    stdout: str
    records: dict        # method -> record
    trackers: tuple      # the --log-to trackers it logged to (those installed)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> SmokeRun:
    out = tmp_path_factory.mktemp("smoke") / "out"
    trackers = TRACKERS if all(importlib.util.find_spec(t) for t in TRACKERS) else ()
    result = run_cli(*SMOKE_RUN, "--out", out, *(["--log-to", *trackers] if trackers else []),
                     env={"MLFLOW_TRACKING_URI": ""})  # "" -> OUT/mlflow.db
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return SmokeRun(out=out, stdout=result.stdout, records={r["method"]: r for r in stored_records(out)},
                    trackers=trackers)


def one_clean_error_line(result) -> str:
    """Bad input: exit 2, exactly one line on stderr, no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("ftbench: error: ")
    return lines[0]


FAULT_TALLY = {"tried": 0, "lost": 0, "tests": set()}


def stored_records(out) -> list:
    """Every line of OUT/results.jsonl that parses as JSON (read here, not through bench.results.store:
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
    A loss fails the calling test here, and the session with it (pytest_sessionfinish), so no
    fault test can pass while the store lost a record. Returns the records found."""
    found = stored_records(out)
    lost = lost_records(found, expected=expected, kept=kept)
    FAULT_TALLY["tried"] += 1
    FAULT_TALLY["lost"] += lost
    FAULT_TALLY["tests"].add(os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0])
    assert lost == 0, f"{lost} record(s) lost or changed in {out}: expected {expected}, found {len(found)}"
    return found


def lost_records(found: list, *, expected: int, kept=()) -> int:
    """Records lost: fewer found than expected, or a kept record missing or changed."""
    missing = Counter(json.dumps(r, sort_keys=True) for r in kept)
    missing.subtract(json.dumps(r, sort_keys=True) for r in found)
    return max(expected - len(found), sum(n for n in missing.values() if n > 0), 0)


def pytest_sessionfinish(session, exitstatus):
    """A lost record fails the session even where a test swallowed the assertion."""
    if FAULT_TALLY["lost"] and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if FAULT_TALLY["tried"]:
        terminalreporter.write_line(
            f"fault injection: {len(FAULT_TALLY['tests'])} tests injected {FAULT_TALLY['tried']} faults, "
            f"{FAULT_TALLY['lost']} records lost" + (": the session fails" if FAULT_TALLY["lost"] else ""))
