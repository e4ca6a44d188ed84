"""The smoke matrix through Ray and through submitit's local executor gives the records the local
executor gives, and a Ray worker killed mid-matrix loses no finished record.

A local Ray cluster is started for the session (`ray start --head --block`, stopped by SIGTERM)
and the CLI joins it with --ray-address, as a user joins a real cluster.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.executors.ray_exec import RAY_LOOPBACK_ENV
from tests.conftest import count_fault, run_cli
from tests.test_faults import lines, runs_started, start, wait_for, worker_pids

pytest.importorskip("ray", reason="ray is in the test extra: pip install -e .[test]")
pytest.importorskip("submitit", reason="submitit is in the test extra: pip install -e .[test]")

SMOKE = ["--profile", "smoke", "--no-eval", "--no-report", "--steps", "3"]

# Record fields that may differ between executors, and why. Everything else must be equal.
MAY_DIFFER = {
    "run_id": "begins with the UTC second the run started",
    "started_at": "a time", "finished_at": "a time", "wall_s": "a time",
    "throughput": "step times; its token and step counts are compared separately",
    "env.calibration": "a matmul timing taken in each run",
    "memory": "RSS measurements: page and allocator state differ by a little between processes; "
              "compared separately, within 10%",
    "estimate.measured_bytes": "the measured train peak (memory)",
    "estimate.error_pct": "derived from the measured train peak",
    "estimate.terms.baseline": "on CPU the planner takes the measured baseline RSS (memory)",
    "estimate.total_bytes": "includes estimate.terms.baseline",
    "estimate.device_bytes": "includes estimate.terms.baseline",
    "host": "the node the executor picked (the same machine here)",
    "env.hostname": "the node the executor picked",
    "executor": "names the executor",
}


def flat(value, prefix=""):
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in flat(sub, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def compared(record: dict) -> dict:
    return {k: v for k, v in flat(record).items()
            if not any(k == skip or k.startswith(skip + ".") for skip in MAY_DIFFER)}


@pytest.fixture(scope="module")
def ray_address(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray = Path(sys.executable).parent / "ray"
    # Loopback only: the head advertises 127.0.0.1, never the machine's interface address.
    head = subprocess.Popen([ray, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                             "--num-cpus=2", "--num-gpus=0", "--object-store-memory=100000000",
                             "--include-dashboard=false", "--disable-usage-stats", "--block"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **RAY_LOOPBACK_ENV})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert head.poll() is None, f"ray start exited with code {head.returncode}"
            time.sleep(0.5)
    yield f"127.0.0.1:{port}"
    head.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
    head.wait(timeout=120)


def by_method(out: Path) -> dict:
    return {r["method"]: r for r in lines(out)}


def test_ray_and_submitit_give_the_records_local_gives(tmp_path, ray_address):
    outs = {name: tmp_path / name for name in ("local", "ray", "submitit-local")}
    extra = {"local": [], "ray": ["--ray-address", ray_address], "submitit-local": []}
    for name, out in outs.items():
        result = run_cli(*SMOKE, "--executor", name, *extra[name], "--out", out)
        assert result.returncode == 0, result.stdout + result.stderr
    local = by_method(outs["local"])
    assert sorted(local) == ["full", "lora", "qlora"]
    for name in ("ray", "submitit-local"):
        other = by_method(outs[name])
        assert sorted(other) == sorted(local)
        for method, record in other.items():
            mine, theirs = compared(local[method]), compared(record)
            assert mine.keys() == theirs.keys(), (name, method)
            assert {k: v for k, v in theirs.items() if mine[k] != v} == {}, (name, method)
            assert record["executor"] == name and local[method]["executor"] == "local"
            assert record["throughput"]["tokens_per_step"] == local[method]["throughput"]["tokens_per_step"]
            for phase in ("load", "train", "eval"):
                a, b = local[method]["memory"][phase]["peak_bytes"], record["memory"][phase]["peak_bytes"]
                assert abs(a - b) <= 0.10 * a, (name, method, phase, a, b)


def test_a_killed_ray_worker_loses_no_finished_record_and_resume_completes(tmp_path, ray_address):
    out = tmp_path / "out"
    proc = start(*SMOKE, "--executor", "ray", "--ray-address", ray_address, "--out", out)
    wait_for(lambda: len(lines(out)) == 1 and runs_started(out) == 2 and worker_pids(out),
             what="first run recorded, second running", proc=proc)
    (child,) = worker_pids(out)
    ray_worker = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1])
    os.kill(ray_worker, signal.SIGKILL)
    _, err = proc.communicate(timeout=600)
    records = lines(out)
    assert proc.returncode == 1, err
    assert [r["status"] for r in records] == ["ok", "crashed", "ok"]
    assert records[1]["error"].startswith("ray: ") and records[1]["executor"] == "ray"
    wait_for(lambda: not worker_pids(out), timeout=30, what="the orphaned run to die with its Ray worker")
    resumed = run_cli(*SMOKE, "--out", out, "--resume")  # the local executor completes a ray matrix
    after = count_fault(out, expected=4, kept=records)  # the 3 records above, then lora again
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resume: 2 of 3 runs already ok" in resumed.stdout
    assert after[:3] == records and sorted(r["method"] for r in after if r["status"] == "ok") == ["full", "lora", "qlora"]
