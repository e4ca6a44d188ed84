"""--cpus-per-run: the CLI hands it to the executor, and a Slurm job asks for exactly that many
CPUs (the sbatch script submitit writes), or leaves the partition's default without it.
The Ray side (what a task asks of the cluster) is tested with the Ray executor."""

import os

import pytest

from bench import cli
from bench.run import command as run_command, executors, session

SPEC = {"nproc": 1, "run_timeout_s": 600, "device": "cpu", "run_id": "r1"}


@pytest.mark.parametrize("executor", ["ray", "submitit-local", "local"])
def test_the_cli_hands_cpus_per_run_to_the_executor(tmp_path, monkeypatch, executor):
    made = {}
    monkeypatch.setattr(executors, "make_executor", lambda name, **kw: made.update(name=name, **kw) or object())
    monkeypatch.setattr(session, "run_matrix", lambda specs, **kw: 0)
    monkeypatch.setattr(run_command, "check_data", lambda specs: None)
    code = cli.main(["run", "--profile", "smoke", "--executor", executor, "--cpus-per-run", "3",
                     "--out", str(tmp_path / "out")])
    assert code == 0 and made["name"] == executor and made["cpus_per_run"] == 3


def sbatch_script(tmp_path, monkeypatch, cpus_per_run) -> str:
    from bench.run.executors.slurm import SubmititExecutor

    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "srun").write_text("#!/bin/sh\nexit 1\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")  # submitit looks for srun
    for name in ("PYTHONPATH", "FTBENCH_CACHE"):  # the executor sets both for its jobs: restored after
        monkeypatch.setenv(name, os.environ.get(name, ""))
    slurm = SubmititExecutor(cluster="slurm", folder=tmp_path / "jobs", partition="cpu", cpus_per_run=cpus_per_run)
    monkeypatch.setattr(slurm.executor, "submit", lambda *args, **kwargs: "job")  # no sbatch here
    assert slurm.submit(SPEC, out_dir=tmp_path) == "job"
    return slurm.executor._executor._make_submission_file_text(command="true", uid="u")


def test_a_slurm_job_asks_for_cpus_per_run(tmp_path, monkeypatch):
    script = sbatch_script(tmp_path, monkeypatch, 3)
    assert "#SBATCH --cpus-per-task=3\n" in script and "#SBATCH --partition=cpu\n" in script


def test_without_it_a_slurm_job_takes_the_partitions_default(tmp_path, monkeypatch):
    assert "--cpus-per-task" not in sbatch_script(tmp_path, monkeypatch, None)
