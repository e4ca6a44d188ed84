"""The launcher on its own, with stand-in workers: what it does with a child that misbehaves."""

import json
import sys
import time

import pytest

from bench.results.record import skeleton
from bench.run import launcher
from bench.run.matrix import build_matrix, run_id
from bench.run.profile import load_profile
from bench.run.worker import RESULT_WRITTEN

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


SHOW_ALLOCATOR = ("import os; print('MALLOC_MMAP_THRESHOLD_=' + os.environ.get('MALLOC_MMAP_THRESHOLD_', 'unset'), "
                  "flush=True)")


@pytest.mark.parametrize("device, threshold, seen", [
    ("cpu", 65536, "65536"),
    ("auto", 65536, "65536"),   # auto on a machine without a GPU runs on the CPU: the same setting applies
    ("cpu", 0, "unset"),        # 0: glibc's default, nothing set
])
def test_the_cpu_malloc_mmap_threshold_reaches_the_child(tmp_path, monkeypatch, device, threshold, seen):
    from bench.run import hardware

    monkeypatch.setattr(hardware, "cuda_devices", lambda: [])  # a CPU machine, whatever this one has
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    settings = load_profile("smoke", overrides={"run": {"methods": ["lora"], "device": device,
                                                       "cpu_malloc_mmap_threshold": threshold}})
    spec = dict(build_matrix(settings)[0])
    spec["run_id"] = run_id(spec)
    monkeypatch.setattr(launcher, "worker_command", lambda spec, path: [sys.executable, "-c", SHOW_ALLOCATOR])
    launcher.launch(spec, out_dir=tmp_path, echo=lambda line: None)
    assert f"MALLOC_MMAP_THRESHOLD_={seen}\n" in (tmp_path / "runs" / spec["run_id"] / "worker.log").read_text()


def test_no_malloc_threshold_for_a_cuda_run(monkeypatch):
    from bench.run import hardware

    monkeypatch.setattr(hardware, "cuda_devices", lambda: [("A100", 8, 0, 80 * 2**30)])
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    for device in ("cuda", "auto"):  # auto with a GPU visible computes on it: host malloc is not what is measured
        assert "MALLOC_MMAP_THRESHOLD_" not in launcher.child_env({"device": device,
                                                                   "cpu_malloc_mmap_threshold": 65536})
