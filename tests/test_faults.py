"""Fault injection: interrupt, kill, starve and feed bad input to ftbench; count lost records.

After each fault, the test reads the store and counts the records it expected against those it
found (tests.conftest.count_fault): a lost or changed record fails the test and the session,
which prints `fault injection: N tests injected F faults, M records lost`.

Faults aimed at the driver (signals, resume, timeouts, a full disk) run it with stub children
(tests.stub_worker): one that finishes at once, or one that hangs until killed, so the fault
lands where the test says. Faults aimed at the child (kill -9 mid-training, out of memory) run
the real worker.
"""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.results.schema import SCHEMA_VERSION
from tests.conftest import ROOT, cli_command, cli_env, count_fault, lost_records, one_clean_error_line, run_cli

SMOKE = ["--profile", "smoke", "--no-eval", "--no-report", "--steps", "3"]
HANG_SECOND = {"full": "ok", "lora": "hang", "qlora": "ok"}  # the first run is recorded, the second never ends
FIXTURE = ROOT / "tests/fixtures/results_synthetic.jsonl"


def start(*args, stub=None, env=None, **kwargs):
    """run_bench.py ARGS started in the background (children stubbed with `stub`, see run_cli);
    `env`: variables set for it on top of this process's."""
    return subprocess.Popen(cli_command(*args, stub=stub), cwd=ROOT, env=cli_env(args, env=env, stub=stub),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def wait_for(condition, *, timeout=300, what="condition", proc=None):
    """Poll `condition` until it holds. With `proc`, fail at once (with its output) when that
    process has already exited: the condition can then never come true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process exited with code {proc.returncode} before {what}:\n{out}\n{err}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def lines(out: Path) -> list:
    """Every line of results.jsonl parsed: a partial or corrupt line fails the test."""
    path = out / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def runs_started(out: Path) -> int:
    return len(list((out / "runs").glob("*/worker.log"))) if (out / "runs").exists() else 0


def worker_pids(out: Path) -> list:
    """The run children (bench.run.worker or tests.stub_worker) working in OUT."""
    found = subprocess.run(["pgrep", "-f", f"worker {out}"], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a job started with & from a script inherits it


@pytest.mark.parametrize("sig,inherited",
                         [(signal.SIGINT, None), (signal.SIGTERM, None), (signal.SIGINT, _ignore_sigint)],
                         ids=["SIGINT", "SIGTERM", "SIGINT-inherited-ignored"])
def test_signal_to_parent_records_everything_then_resume_completes(tmp_path, sig, inherited):
    """SIGINT or SIGTERM stops the matrix cleanly, also when the driver was started with SIGINT
    ignored (a background job of a script, as CI may start it: that hung for 60 s before)."""
    out = tmp_path / "out"
    proc = start(*SMOKE, "--out", out, stub=HANG_SECOND, preexec_fn=inherited)
    wait_for(lambda: len(lines(out)) == 1 and worker_pids(out), what="first run done, second hanging", proc=proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    records = lines(out)
    assert proc.returncode == 130 and "Traceback" not in err
    assert [r["status"] for r in records] == ["ok", "error", "skipped"]
    assert "interrupted" in records[1]["error"] and "not started" in records[2]["error"]
    assert not worker_pids(out), "a child outlived the interrupted parent"
    resumed = run_cli(*SMOKE, "--out", out, "--resume", stub={})
    after = count_fault(out, expected=5, kept=records)  # the 3 records above, then lora and qlora again
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    ok = [r["method"] for r in after if r["status"] == "ok"]
    assert sorted(ok) == ["full", "lora", "qlora"] and after[:3] == records


def test_kill_9_of_the_parent_then_resume_runs_each_once(tmp_path):
    out = tmp_path / "out"
    proc = start(*SMOKE, "--out", out, stub=HANG_SECOND)
    wait_for(lambda: len(lines(out)) == 1 and worker_pids(out), what="first run done, second hanging", proc=proc)
    proc.kill()
    proc.communicate(timeout=30)
    first = lines(out)
    wait_for(lambda: not worker_pids(out), timeout=30, what="orphaned child to die with its parent")
    resumed = run_cli(*SMOKE, "--out", out, "--resume", stub={})
    records = count_fault(out, expected=3, kept=first)
    assert resumed.returncode == 0 and "resume: 1 of 3 runs already ok" in resumed.stdout
    assert [r["method"] for r in records] == ["full", "lora", "qlora"]
    assert all(r["status"] == "ok" for r in records)


# Steps enough that the killed child is still training when the kill lands: at ~0.5 s a step
# (tiny-llama full, 2 cores) the last step is minutes after the first, never a race.
MANY_STEPS = 400


def test_kill_9_of_a_child_mid_training_is_recorded_and_the_rest_go_on(tmp_path):
    out = tmp_path / "out"
    args = ("--profile", "smoke", "--no-eval", "--no-report", "--steps", MANY_STEPS, "--methods", "full", "lora")
    proc = start(*args, "--out", out, stub={"full": "real", "lora": "ok"})

    def log():
        return "".join(p.read_text() for p in (out / "runs").glob("*/worker.log")) if (out / "runs").exists() else ""

    wait_for(lambda: "train step 1/" in log() and worker_pids(out), what="first child training", proc=proc)
    for pid in worker_pids(out):
        os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=300)
    records = count_fault(out, expected=2)
    assert proc.returncode == 1
    # the other run went on
    assert [(r["method"], r["status"]) for r in records] == [("full", "crashed"), ("lora", "ok")]
    assert "killed by signal 9" in records[0]["error"]
    assert f"train step {MANY_STEPS}/{MANY_STEPS}" not in log()  # killed mid-training, not after it


# Above the floor, so the child gets past its imports into the measured phases (it loaded
# tiny-llama and failed in the first training step here); below what a full fine-tuning step
# needs on top (each logits tensor of a 4 x 64 batch over a 49,152-token vocabulary is 48 MiB,
# and the step holds several). 172 MiB is what the 650 MiB budget left above the 478 MiB floor.
OOM_ABOVE_FLOOR = 172 * 2**20


def test_out_of_memory_in_a_child_is_status_oom(tmp_path, startup_floor):
    out = tmp_path / "out"
    budget = f"{(startup_floor + OOM_ABOVE_FLOOR) // 2**20}MiB"
    result = run_cli(*SMOKE, "--methods", "full", "--max-memory", budget, "--out", out, stub={"full": "real"})
    (record,) = count_fault(out, expected=1)
    assert result.returncode == 1 and record["status"] == "oom", record["error"]
    assert "allocate" in record["error"] or "MemoryError" in record["error"]
    # the worker itself recorded it (past its imports, inside a phase), not the launcher from a dead child
    assert not record["error"].startswith("out of memory under --max-memory") and record["memory"]["baseline_bytes"]


def test_a_budget_below_what_python_needs_to_start_is_bad_input_not_a_crash(tmp_path, startup_floor):
    out = tmp_path / "out"
    message = one_clean_error_line(run_cli(*SMOKE, "--methods", "full", "--max-memory", "1MiB", "--out", out))
    count_fault(out, expected=0)
    assert "--max-memory 1MiB is below the" in message and "MiB a run needs just to start" in message
    floor = int(message.split("below the ")[1].split(" MiB")[0])
    assert floor == -(-startup_floor // 2**20)  # the measured start-up floor, named in the line
    assert 100 < floor < 4096
    assert not out.exists()


def test_a_hanging_child_is_killed_at_its_timeout(tmp_path):
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli(*SMOKE, "--methods", "lora", "--run-timeout", "2", "--out", out, stub={"lora": "hang"})
    (record,) = count_fault(out, expected=1)
    assert result.returncode == 1 and record["status"] == "timeout", record
    assert "timed out after 2 s" in record["error"] and "stub: hanging until killed" in result.stdout
    assert time.monotonic() - started < 60 and not worker_pids(out)


def test_a_full_disk_leaves_whole_lines_and_loses_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    kept = FIXTURE.read_text() * 20
    (out / "results.jsonl").write_text(kept)
    limit = len(kept.encode()) + 200  # room for a fraction of one more record: the disk fills mid-line

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = start(*SMOKE, "--methods", "lora", "--out", out, "--append", preexec_fn=small_disk, stub={})
    _, err = proc.communicate(timeout=300)
    count_fault(out, expected=len(kept.splitlines()), kept=[json.loads(line) for line in kept.splitlines()])
    assert proc.returncode == 1 and "Traceback" not in err and "ftbench: error: cannot write" in err
    assert (out / "results.jsonl").read_text() == kept


def test_concurrent_writers_never_interleave(tmp_path):
    record = FIXTURE.read_text().splitlines()[0]
    code = ("import json,sys; from bench.results import store; r=json.loads(sys.argv[2]);"
            "[store.append(sys.argv[1], dict(r, run_id=f'{sys.argv[3]}-{i}')) for i in range(200)]")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), record, name], cwd=ROOT)
             for name in ("a", "b", "c")]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    count_fault(tmp_path, expected=600)
    records = lines(tmp_path)
    assert len(records) == 600 and len({r["run_id"] for r in records}) == 600


def test_corrupt_line_and_newer_schema_are_refused_clearly(tmp_path):
    good = FIXTURE.read_text().splitlines()
    (tmp_path / "results.jsonl").write_text("\n".join([good[0], '{"schema_version": 1, "run', *good[1:]]) + "\n")
    message = one_clean_error_line(run_cli("report", tmp_path, "--out", tmp_path / "r"))
    # refusing to read loses nothing
    count_fault(tmp_path, expected=len(good), kept=[json.loads(line) for line in good])
    assert "results.jsonl:2" in message
    newer = dict(json.loads(good[0]), schema_version=SCHEMA_VERSION + 1)
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "results.jsonl").write_text(json.dumps(newer) + "\n")
    message = one_clean_error_line(run_cli("gate", FIXTURE, tmp_path / "new"))
    count_fault(tmp_path / "new", expected=1, kept=[newer])
    assert "newer than this ftbench" in message


@pytest.mark.parametrize("content", [b"[run\nsteps = 3", b"\xff\xfe[run]", None],
                         ids=["malformed", "not-utf8", "a-directory"])
def test_unreadable_or_malformed_profile(tmp_path, content):
    profile = tmp_path / "bad.toml"
    profile.mkdir() if content is None else profile.write_bytes(content)
    message = one_clean_error_line(run_cli("--profile", profile, "--out", tmp_path / "out"))
    count_fault(tmp_path / "out", expected=0)
    assert "profile" in message and not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["no-such-model", "../../etc", "<script>alert(1)</script>"])
def test_hostile_or_unknown_model_names(tmp_path, name):
    message = one_clean_error_line(run_cli(*SMOKE, "--models", name, "--out", tmp_path / "out"))
    count_fault(tmp_path / "out", expected=0)
    assert "model" in message and not (tmp_path / "out").exists()


def test_a_model_directory_named_with_markup_stays_inside_out_dir(tmp_path, tiny_path):
    crafted = tmp_path / "<img src=x onerror=alert(1)>..model"
    shutil.copytree(tiny_path, crafted)
    out = tmp_path / "out"
    result = run_cli(*SMOKE, "--methods", "lora", "--models", crafted, "--out", out, stub={},
                     env={"FTBENCH_STUB_DATA_CHECK": "1"})  # the tokenizer is read from the crafted path
    (record,) = count_fault(out, expected=1)
    assert result.returncode == 0, result.stderr
    run_dir = (out / "runs" / record["run_id"]).resolve()
    assert run_dir.parent == (out / "runs").resolve() and "<" not in record["run_id"]
    page = run_cli("report", out, "--out", out)
    assert page.returncode == 0 and "<img src=x" not in (out / "index.html").read_text()


def test_an_output_directory_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    message = one_clean_error_line(run_cli(*SMOKE, "--out", blocker / "out", stub={}))  # no data check: not its subject
    count_fault(blocker.parent, expected=0)
    assert "output directory" in message and blocker.read_text() == "not a directory"


def test_the_tally_reports_what_the_store_lost():
    a, b, c = ({"run_id": name, "status": "ok"} for name in "abc")
    assert lost_records([a, b, c], expected=3, kept=[a, b]) == 0
    assert lost_records([a, c], expected=3, kept=[a, b]) == 1          # b is gone
    assert lost_records([a, dict(b, status="error"), c], expected=3, kept=[a, b]) == 1  # b was rewritten
    assert lost_records([], expected=2) == 2


def test_a_lost_or_changed_record_fails_the_fault_test(tmp_path, monkeypatch):
    """count_fault fails the test that injected the fault (here on a store where a record went
    missing, then one rewritten); the tally it adds to fails the session (conftest)."""
    from tests import conftest

    monkeypatch.setattr(conftest, "FAULT_TALLY", {"tried": 0, "lost": 0, "tests": set()})  # the session's stays clean
    records = [json.loads(line) for line in FIXTURE.read_text().splitlines()[:3]]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:2]))
    with pytest.raises(AssertionError, match="1 record.s. lost or changed"):
        count_fault(tmp_path, expected=3, kept=records[:2])
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(dict(r, status="error")) + "\n" for r in records))
    with pytest.raises(AssertionError, match="2 record.s. lost or changed"):
        count_fault(tmp_path, expected=3, kept=records[:2])
    assert conftest.FAULT_TALLY["tried"] == 2 and conftest.FAULT_TALLY["lost"] == 3
    assert conftest.FAULT_TALLY["tests"] == {os.environ["PYTEST_CURRENT_TEST"].split(" ")[0]}
