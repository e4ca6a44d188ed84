"""The launcher on its own, with stand-in workers: what it does with a child that misbehaves."""

import json
import sys
import time

from bench import launcher
from bench.matrix import build_matrix, run_id
from bench.profile import load_profile
from bench.record import skeleton
from bench.worker import RESULT_WRITTEN

STUCK = """
import json, sys, time
from pathlib import Path
spec_path = Path(sys.argv[1])
record = json.loads(sys.argv[2])
(spec_path.parent / "result.json").write_text(json.dumps(record))
print(sys.argv[3], flush=True)
time.sleep(600)   # finished, but never exits (as a torchrun rank was seen to do)
"""


def test_a_child_stuck_after_writing_its_result_is_ended_and_its_result_kept(tmp_path, monkeypatch):
    spec = dict(build_matrix(load_profile("smoke", overrides={"run": {"methods": ["lora"]}}))[0])
    spec["run_id"] = run_id(spec)
    finished = dict(skeleton(spec), finished_at="now", wall_s=1.0)
    monkeypatch.setattr(launcher, "EXIT_GRACE_S", 1)
    monkeypatch.setattr(launcher, "worker_command", lambda spec, path: [
        sys.executable, "-c", STUCK, str(path), json.dumps(finished), RESULT_WRITTEN])
    started = time.monotonic()
    record = launcher.launch(spec, out_dir=tmp_path, echo=lambda line: None)
    assert time.monotonic() - started < 60          # not the run timeout (3600 s)
    assert record["status"] == "ok" and record["run_id"] == spec["run_id"]


STARVED = """
import os, sys
print("cannot allocate memory for thread-local data: ABORT", flush=True)
os.abort()
"""


def test_a_child_starved_under_a_cpu_budget_is_oom_never_crashed(tmp_path, monkeypatch):
    spec = dict(build_matrix(load_profile("smoke", overrides={"run": {"methods": ["lora"], "device": "cpu"}}))[0])
    spec["run_id"] = run_id(spec)
    monkeypatch.setattr(launcher, "worker_command", lambda spec, path: [sys.executable, "-c", STARVED])
    budgeted = launcher.launch(dict(spec, max_memory="4GiB"), out_dir=tmp_path / "a", echo=lambda line: None)
    assert budgeted["status"] == "oom" and "under --max-memory 4GiB" in budgeted["error"]
    assert "killed by signal 6" in budgeted["error"]
    unbudgeted = launcher.launch(spec, out_dir=tmp_path / "b", echo=lambda line: None)
    assert unbudgeted["status"] == "crashed"  # without a budget an abort is not read as memory
