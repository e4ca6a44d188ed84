"""The smoke matrix through Ray and through submitit's local executor gives the records the local
executor gives, and a Ray worker killed mid-matrix loses no finished record.

A local Ray cluster is started for the session (`ray start --head --block`, stopped by SIGTERM)
and the CLI joins it with --ray-address, as a user joins a real cluster. Every Ray test runs as on
a machine where Ray was used before: HOME holds a ~/.ray/auth_token an earlier local cluster wrote
(so `ray start --head` turns token authentication on), and Ray's temp directory holds a
ray_current_cluster file naming a cluster that has stopped. Both live in temporary directories;
the real ~/.ray is never touched.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bench.run.executors import ray_exec
from bench.run.executors.ray_exec import RAY_LOOPBACK_ENV
from tests.conftest import count_fault, one_clean_error_line, run_cli
from tests.test_faults import lines, runs_started, start, wait_for, worker_pids

pytest.importorskip("ray", reason="ray is in the test extra: pip install -e .[test]")
pytest.importorskip("submitit", reason="submitit is in the test extra: pip install -e .[test]")

STALE_TOKEN = "0123456789abcdef0123456789abcdef"
SMOKE = ["--profile", "smoke", "--no-eval", "--no-report", "--steps", "3"]

# Record fields that may differ between executors, and why. Everything else must be equal.
MAY_DIFFER = {
    "run_id": "begins with the UTC second the run started",
    "started_at": "a time", "finished_at": "a time", "wall_s": "a time",
    "throughput": "step times; its token and step counts are compared separately",
    "env.calibration": "a matmul timing taken in each run",
    "contention": "how busy the machine was during each run's timed steps",
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
    "resources": "what a cluster executor gave its task (Ray and Slurm records only)",
    "config.memory_budget": "the default CPU budget is given only where runs start on this machine "
                            "(local, submitit-local), never on a Ray node",
}


def flat(value, prefix=""):
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in flat(sub, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def compared(record: dict) -> dict:
    return {k: v for k, v in flat(record).items()
            if not any(k == skip or k.startswith(skip + ".") for skip in MAY_DIFFER)}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def used_before(tmp_path_factory):
    """The environment of a machine where Ray ran before (see the module docstring)."""
    home = tmp_path_factory.mktemp("home")
    (home / ".ray").mkdir()
    (home / ".ray" / "auth_token").write_text(STALE_TOKEN)
    with stale_ray_tmpdir() as ray_tmp:
        yield {"HOME": str(home), "RAY_TMPDIR": str(ray_tmp)}


@contextlib.contextmanager
def stale_ray_tmpdir():
    """A RAY_TMPDIR whose ray/ray_current_cluster names a stopped cluster (nothing listens there)."""
    ray_tmp = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{closed_port()}")
    try:
        yield ray_tmp
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


@contextlib.contextmanager
def ray_head(env: dict, *, cpus: int):
    """A Ray head on 127.0.0.1 with `cpus` CPUs, in `env`; yields its address."""
    port = closed_port()
    ray = Path(sys.executable).parent / "ray"
    # Loopback only: the head advertises 127.0.0.1, never the machine's interface address.
    head = subprocess.Popen([ray, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                             f"--num-cpus={cpus}", "--num-gpus=0", "--object-store-memory=100000000",
                             "--include-dashboard=false", "--disable-usage-stats", "--block"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **RAY_LOOPBACK_ENV, **env})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None, f"ray start exited with code {head.returncode}"
                time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        head.wait(timeout=120)


@pytest.fixture(scope="module")
def ray_address(used_before):
    """A cluster with this machine's cores; token authentication on (the head found the token)."""
    with ray_head(used_before, cpus=os.cpu_count()) as address:
        yield address


def by_method(out: Path) -> dict:
    return {r["method"]: r for r in lines(out)}


def test_ray_and_submitit_give_the_records_local_gives(tmp_path, ray_address, used_before):
    """Ray's task gets --cpus-per-run = the local run's thread count, so env.threads agrees exactly
    on any machine (Ray sets OMP_NUM_THREADS to the task's CPUs; a local run takes torch's default)."""
    outs = {name: tmp_path / name for name in ("local", "ray", "submitit-local")}
    result = run_cli(*SMOKE, "--executor", "local", "--out", outs["local"], env=used_before)
    assert result.returncode == 0, result.stdout + result.stderr
    local = by_method(outs["local"])
    threads = {r["env"]["threads"] for r in local.values()}
    assert len(threads) == 1 and 1 <= min(threads) <= os.cpu_count()
    extra = {"ray": ["--ray-address", ray_address, "--cpus-per-run", *threads], "submitit-local": []}
    for name in extra:
        result = run_cli(*SMOKE, "--executor", name, *extra[name], "--out", outs[name], env=used_before)
        assert result.returncode == 0, result.stdout + result.stderr
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


def test_a_killed_ray_worker_loses_no_finished_record_and_resume_completes(tmp_path, ray_address, used_before):
    out = tmp_path / "out"
    proc = start(*SMOKE, "--executor", "ray", "--ray-address", ray_address, "--out", out,
                 env={**os.environ, **used_before})
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
    resumed = run_cli(*SMOKE, "--out", out, "--resume", env=used_before)  # the local executor completes a ray matrix
    after = count_fault(out, expected=4, kept=records)  # the 3 records above, then lora again
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resume: 2 of 3 runs already ok" in resumed.stdout
    assert (after[:3] == records
            and sorted(r["method"] for r in after if r["status"] == "ok") == ["full", "lora", "qlora"])


def test_a_ray_cluster_smaller_than_the_driver_runs_and_refuses_what_no_node_has(tmp_path, used_before):
    """A 1-CPU node: the task asks for min(the driver's cores, 1) and runs; before, it asked for the
    driver's cores and waited in Ray's queue forever (on a 1-core driver this cannot show the hang,
    only that the run works). --cpus-per-run above every node is one line, not a wait."""
    with ray_head(used_before, cpus=1) as address:
        out = tmp_path / "out"
        try:
            result = run_cli(*SMOKE, "--methods", "lora", "--executor", "ray", "--ray-address", address,
                             "--out", out, env=used_before, timeout=300)
        except subprocess.TimeoutExpired:
            pytest.fail("the run waited 300 s on a 1-CPU Ray cluster: its task asked for more CPUs than any node has")
        assert result.returncode == 0, result.stdout + result.stderr
        (record,) = lines(out)
        assert (record["status"], record["executor"], record["env"]["threads"]) == ("ok", "ray", 1)
        refused = run_cli(*SMOKE, "--methods", "lora", "--executor", "ray", "--ray-address", address,
                          "--cpus-per-run", "2", "--out", tmp_path / "refused", env=used_before, timeout=300)
        assert ("--cpus-per-run 2 is more than any Ray node has (the largest has 1 CPUs)"
                in one_clean_error_line(refused))
        assert not (tmp_path / "refused" / "results.jsonl").exists()


def test_a_local_cluster_is_a_new_one_whatever_ray_left_behind(tmp_path, used_before):
    """No --ray-address: a new local cluster, though ray_current_cluster names a stopped one (its own
    RAY_TMPDIR: the module's head rewrites the shared one) and ~/.ray holds a token no cluster
    uses; the token file is neither used nor rewritten."""
    home = Path(used_before["HOME"])
    with stale_ray_tmpdir() as ray_tmp:
        cluster_file = (ray_tmp / "ray" / "ray_current_cluster").read_text()
        result = run_cli(*SMOKE, "--methods", "lora", "--executor", "ray", "--out", tmp_path / "out",
                         env={**used_before, "RAY_TMPDIR": str(ray_tmp)}, timeout=300)
        assert (ray_tmp / "ray" / "ray_current_cluster").read_text() == cluster_file
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (record,) = lines(tmp_path / "out")
    assert (record["status"], record["executor"]) == ("ok", "ray")
    assert sorted(p.name for p in (home / ".ray").iterdir()) == ["auth_token"]
    assert (home / ".ray" / "auth_token").read_text() == STALE_TOKEN


def test_a_ray_address_where_nothing_listens_is_one_line(tmp_path, used_before):
    address = f"127.0.0.1:{closed_port()}"
    result = run_cli(*SMOKE, "--executor", "ray", "--ray-address", address, "--out", tmp_path / "out",
                     env=used_before, timeout=120)
    assert f"cannot join the Ray cluster at {address}: nothing answers there" in one_clean_error_line(result)
    assert not (tmp_path / "out" / "results.jsonl").exists()


def test_joining_uses_token_mode_whenever_ray_would_find_a_token(tmp_path):
    """The rule `ray start --head` applies, so a head and a driver with the same HOME agree; a
    RAY_AUTH_MODE the user set wins; a local cluster gets its own fresh token every time."""
    token = tmp_path / "token"
    token.write_text(STALE_TOKEN)
    bare = {"HOME": str(tmp_path / "empty-home")}
    assert ray_exec.auth_env("10.0.0.1:6379", bare) == {}
    assert ray_exec.auth_env("10.0.0.1:6379", {**bare, "RAY_AUTH_TOKEN_PATH": str(token)}) == {"RAY_AUTH_MODE": "token"}
    assert ray_exec.auth_env("10.0.0.1:6379", {**bare, "RAY_AUTH_TOKEN": "x"}) == {"RAY_AUTH_MODE": "token"}
    (tmp_path / "home" / ".ray").mkdir(parents=True)
    (tmp_path / "home" / ".ray" / "auth_token").write_text(STALE_TOKEN)
    assert ray_exec.auth_env("127.0.0.1:6379", {"HOME": str(tmp_path / "home")}) == {"RAY_AUTH_MODE": "token"}
    assert ray_exec.auth_env("127.0.0.1:6379", {"HOME": str(tmp_path / "home"), "RAY_AUTH_MODE": "disabled"}) == {}
    first, second = ray_exec.auth_env(None, bare), ray_exec.auth_env(None, bare)
    assert first["RAY_AUTH_MODE"] == "token" and len(first["RAY_AUTH_TOKEN"]) == 32
    assert first["RAY_AUTH_TOKEN"] != second["RAY_AUTH_TOKEN"]


def test_a_task_asks_for_no_more_than_the_largest_node_has():
    nodes = [{"Alive": True, "Resources": {"CPU": 2.0}}, {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}},
             {"Alive": True, "Resources": {"CPU": 1.0, "GPU": 1.0}}]
    assert ray_exec.largest_node(nodes) == {"CPU": 2.0, "GPU": 1.0}
    cpu, cuda = {"device": "cpu"}, {"device": "cuda", "nproc": 4}
    assert ray_exec.task_cpus(spec=cpu, cpus_per_run=None, node_cpus=1.0) == 1
    assert ray_exec.task_cpus(spec=cpu, cpus_per_run=None, node_cpus=10_000.0) == os.cpu_count()
    assert ray_exec.task_cpus(spec=cpu, cpus_per_run=3, node_cpus=10_000.0) == 3
    assert ray_exec.task_cpus(spec=cuda, cpus_per_run=None, node_cpus=2.0) == 2
    assert ray_exec.task_cpus(spec=cuda, cpus_per_run=None, node_cpus=16.0) == 4


def test_a_run_no_node_can_hold_is_a_crashed_record_not_a_wait():
    """A CUDA run needing more GPUs than any node has comes back from wait() at once with why
    (the session records it crashed); so does a submission Ray refuses."""
    from bench.run.executors import lost_record

    executor = ray_exec.RayExecutor.__new__(ray_exec.RayExecutor)
    executor.largest, executor.cpus_per_run, executor.cluster_gpus = {"CPU": 8.0, "GPU": 1.0}, None, 1.0
    handle = executor.submit({"device": "cuda", "nproc": 2}, out_dir="unused")
    ((back, exc),) = executor.wait([handle])
    assert back is handle and str(exc) == "no Ray node has 2 GPUs (the largest has 1)"

    class Refusing:
        def options(self, **_):
            raise ConnectionError("the cluster went away")

    executor._task = Refusing()
    handle = executor.submit({"device": "cpu"}, out_dir="unused")
    ((_, exc),) = executor.wait([handle])
    record = lost_record({"run_id": "r", "model": "m", "method": "lora"}, executor="ray", exc=exc)
    assert (record["status"], record["error"]) == ("crashed", "ray: ConnectionError: the cluster went away")


# -- GPUs: asked for whenever the run may use them, and the record says what the task was given --
class Options:
    """Ray's remote function as far as submit uses it: keeps the options and arguments."""

    def __init__(self):
        self.calls = []

    def options(self, **kw):
        self.calls.append(kw)
        return self

    def remote(self, *args):
        self.calls[-1]["args"] = args
        return "ref"


def ray_on(cluster_gpus: float, largest_gpus: float):
    executor = ray_exec.RayExecutor.__new__(ray_exec.RayExecutor)
    executor.largest, executor.cluster_gpus = {"CPU": 16.0, "GPU": largest_gpus}, cluster_gpus
    executor.cpus_per_run, executor._env, executor._task = None, {}, Options()
    return executor


def test_ray_asks_for_gpus_for_auto_on_a_gpu_cluster_and_only_there():
    for device, cluster, largest, gpus in [("auto", 8.0, 8.0, 2), ("cuda", 8.0, 8.0, 2), ("auto", 0.0, 0.0, 0),
                                           ("cpu", 8.0, 8.0, 0)]:
        executor = ray_on(cluster, largest)
        assert executor.submit({"device": device, "nproc": 2}, out_dir="o") == "ref"
        (call,) = executor._task.calls
        assert call["num_gpus"] == gpus, (device, cluster, call)
        assert call["num_cpus"] == (2 if gpus else min(os.cpu_count(), 16)), call
        assert call["args"][-1] == {"gpus_requested": gpus, "cpus_requested": call["num_cpus"]}
    lost = ray_on(2.0, 1.0).submit({"device": "auto", "nproc": 2}, out_dir="o")  # GPUs, but no node with 2
    assert str(lost.exc) == "no Ray node has 2 GPUs (the largest has 1)"


def given(monkeypatch, run, *args) -> dict:
    """The record a task body returns, with launch stood in and the CUDA_VISIBLE_DEVICES it was given."""
    from bench.run import launcher
    from bench.results.record import skeleton

    monkeypatch.setattr(launcher, "launch", lambda spec, out_dir, echo: skeleton(spec))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    return run({"run_id": "r", "model": "m", "method": "lora"}, "out", *args)["resources"]


def test_the_record_says_what_the_task_was_given(monkeypatch):
    from bench.run.executors import slurm

    asked = {"gpus_requested": 1, "cpus_requested": 4}
    assert given(monkeypatch, ray_exec._run, {}, asked) == {**asked, "cuda_visible_devices": "3"}
    assert given(monkeypatch, slurm._run, asked) == {**asked, "cuda_visible_devices": "3"}


class Submitit:
    def __init__(self):
        self.params, self.args = {}, None

    def update_parameters(self, **kw):
        self.params.update(kw)

    def submit(self, fn, *args):
        self.args = args
        return "job"


def submitit_on(name: str):
    from bench.run.executors import slurm

    executor = slurm.SubmititExecutor.__new__(slurm.SubmititExecutor)
    executor.name, executor.partition, executor.cpus_per_run, executor.executor = name, "p", None, Submitit()
    return executor


@pytest.mark.parametrize("answer, gpus", [("gpu:h100:8(S:0-1)\n", 1), ("(null)\n(null)\n", 0),
                                          ("(null)\ncpu:2,gpu:a100:4\n", 1)])
def test_slurm_asks_for_gpus_for_auto_when_the_partition_has_them(monkeypatch, answer, gpus):
    from bench.run.executors import slurm

    slurm.partition_gres.cache_clear()
    monkeypatch.setattr(slurm.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 0, answer, ""))
    executor = submitit_on("slurm")
    executor.submit({"device": "auto", "nproc": 1, "run_timeout_s": 600, "run_id": "r"}, out_dir="o")
    assert executor.executor.params["gpus_per_node"] == gpus
    assert executor.executor.args[-1] == {"gpus_requested": gpus, "cpus_requested": None}
    slurm.partition_gres.cache_clear()


def test_slurm_auto_without_sinfo_is_one_line_naming_the_choices(monkeypatch):
    from bench.util.errors import BenchError
    from bench.run.executors import slurm

    def missing(cmd, **kw):
        raise FileNotFoundError(2, "No such file or directory", "sinfo")

    slurm.partition_gres.cache_clear()
    monkeypatch.setattr(slurm.subprocess, "run", missing)
    with pytest.raises(BenchError, match=r"cannot tell whether partition 'p' has GPUs: sinfo could not be run .*; "
                                         r"valid choices: --device cuda, --device cpu"):
        submitit_on("slurm").submit({"device": "auto", "nproc": 1, "run_timeout_s": 600, "run_id": "r"}, out_dir="o")
    executor = submitit_on("slurm")  # an explicit device needs no sinfo
    executor.submit({"device": "cuda", "nproc": 2, "run_timeout_s": 600, "run_id": "r"}, out_dir="o")
    assert executor.executor.params["gpus_per_node"] == 2
    slurm.partition_gres.cache_clear()


def test_submitit_local_resolves_auto_on_this_machine(monkeypatch):
    from bench.run import hardware

    for devices, gpus in [([("H100", 9, 0, 80 * 2**30)], 1), ([], 0)]:
        monkeypatch.setattr(hardware, "cuda_devices", lambda: devices)
        executor = submitit_on("submitit-local")
        executor.submit({"device": "auto", "nproc": 1, "run_timeout_s": 600, "run_id": "r"}, out_dir="o")
        assert executor.executor.params["gpus_per_node"] == gpus
