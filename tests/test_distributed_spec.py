"""nproc/strategy in the spec, and the torchrun command: no torch, no runs (fast)."""

import os
import sys
from pathlib import Path

import pytest

from bench.run.launcher import worker_command
from bench.run.matrix import build_matrix
from bench.run.profile import load_profile
from bench.util.errors import BenchError


def specs(**run):
    return build_matrix(load_profile("smoke", overrides={"run": run}))


def test_one_process_specs_carry_no_distributed_keys_so_old_hashes_still_match():
    one = specs(methods=["full", "lora"])
    assert all("nproc" not in s and "strategy" not in s for s in one)
    # the hash of a one-process spec is pinned by what it was before nproc existed
    assert specs(methods=["full"], nproc=1, strategy="ddp")[0]["spec_hash"] == one[0]["spec_hash"]


def test_nproc_and_strategy_are_work_and_auto_resolves_per_method():
    two = {s["method"]: s for s in specs(methods=["base", "full", "lora", "qlora", "lora8"], nproc=2)}
    assert {m: s.get("strategy") for m, s in two.items()} == {
        "base": None, "full": "fsdp", "lora": "fsdp", "qlora": "fsdp", "lora8": "ddp"}
    assert two["full"]["nproc"] == 2 and "nproc" not in two["base"]
    ddp = specs(methods=["full"], nproc=2, strategy="ddp")[0]
    assert ddp["spec_hash"] != two["full"]["spec_hash"] != specs(methods=["full"])[0]["spec_hash"]


@pytest.mark.parametrize("run, message", [
    ({"nproc": 3}, "run.batch_size (4) must be a multiple of run.nproc (3)"),
    ({"nproc": 0}, "run.nproc must be > 0"),
    ({"strategy": "zero3"}, "unknown run.strategy 'zero3'; valid choices: auto, ddp, fsdp"),
    ({"nproc": 2, "strategy": "fsdp", "methods": ["lora8"]}, "lora8 cannot run under fsdp"),
])
def test_bad_distributed_settings_are_named(run, message):
    with pytest.raises(BenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        specs(**run)


def test_worker_command_uses_torchrun_only_for_several_processes():
    path = Path("/r/spec.json")
    assert worker_command({"nproc": 1}, path) == [sys.executable, "-m", "bench.run.worker", str(path)]
    assert worker_command({}, path)[1:3] == ["-m", "bench.run.worker"]
    cmd = worker_command({"nproc": 2}, path)
    assert cmd[1:3] == ["-m", "torch.distributed.run"] and "--standalone" in cmd and "--nproc-per-node=2" in cmd
    assert cmd[-3:] == ["-m", "bench.run.worker", str(path)]


def test_ranks_meet_on_the_loopback_and_gloo_binds_to_it():
    """MASTER_ADDR is 127.0.0.1 (torchrun's --local-addr), and a CPU run's gloo uses the interface
    that holds 127.0.0.1, whatever the hostname resolves to; a single process gets neither."""
    import socket

    import psutil

    from bench.run.launcher import child_env

    cmd = worker_command({"nproc": 2}, Path("/r/spec.json"))
    assert "--local-addr=127.0.0.1" in cmd and cmd.index("--local-addr=127.0.0.1") < cmd.index("-m", 3)
    name = child_env({"nproc": 2, "device": "cpu"})["GLOO_SOCKET_IFNAME"]
    assert "127.0.0.1" in [a.address for a in psutil.net_if_addrs()[name] if a.family == socket.AF_INET]
    assert "GLOO_SOCKET_IFNAME" not in child_env({"nproc": 1, "device": "cpu"}) or "GLOO_SOCKET_IFNAME" in os.environ


def test_launcher_and_executors_never_import_torch():
    import subprocess

    code = ("import sys, bench.run.launcher, bench.run.session, bench.run.executors, bench.run.executors.local,"
            " bench.run.executors.ray_exec, bench.run.executors.slurm; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_slurm_without_a_partition_is_one_line_and_exit_2(tmp_path):
    from tests.conftest import one_clean_error_line, run_cli

    result = run_cli("--profile", "smoke", "--executor", "slurm", "--out", tmp_path / "out")
    assert "--executor slurm needs --slurm-partition NAME" in one_clean_error_line(result)
    assert not (tmp_path / "out").exists()
    result = run_cli("--profile", "smoke", "--executor", "mpi", "--out", tmp_path / "out")
    assert "unknown executor 'mpi'; valid choices: local, ray, slurm, submitit-local" in one_clean_error_line(result)
