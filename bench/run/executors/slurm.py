"""Slurm through submitit: one job per run (`--executor slurm --slurm-partition P`), or
submitit's local executor (`--executor submitit-local`), which runs the same job machinery as
subprocesses of this machine: that is how the Slurm path is tested without a cluster.

A Slurm job asks for one node, `gpus_per_node` = nproc for a run that may compute on CUDA, and a
time limit of the run's timeout plus a margin (the launcher inside the job still enforces the
timeout and records it). The local executor runs one job at a time so runs never share the cores.

A run may compute on CUDA when its device is `cuda`, or `auto` where GPUs are: for
`submitit-local` this machine (torch's view, bench.run.hardware); for `slurm` the partition's
generic resources as `sinfo` lists them (a `gpu` GRES on any of its nodes). Where sinfo cannot
answer, `auto` is not guessed: the run is refused with one line asking for --device cuda or cpu.
The record's `resources` says what the job asked for and the CUDA_VISIBLE_DEVICES it saw.
"""

import os
import subprocess
import time
from functools import lru_cache
from pathlib import Path

from bench.util import paths
from bench.util.errors import BenchError


def _run(spec: dict, out_dir: str, asked: dict) -> dict:
    """Body of the job, on the node that runs it: the same launcher as `local`."""
    from bench.run.launcher import launch

    record = launch(spec, out_dir=Path(out_dir), echo=lambda *_: None)
    record["resources"] = {**asked, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    return record


@lru_cache(maxsize=8)
def partition_gres(partition: str) -> tuple:
    """(whether partition has GPUs, why not known): True/False from `sinfo`'s GRES column, or
    (None, the reason) where sinfo cannot be run or does not answer."""
    try:
        done = subprocess.run(["sinfo", "--noheader", f"--partition={partition}", "--format=%G"],
                              capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"sinfo could not be run ({exc.__class__.__name__}: {exc})"
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        why = (done.stderr.strip().splitlines() or [f"no such partition {partition!r}"])[-1]
        return None, f"sinfo did not list partition {partition!r} ({why})"
    return any(gres.startswith("gpu") or ",gpu" in gres for gres in lines), None


class SubmititExecutor:
    name = "slurm"

    def __init__(self, *, cluster: str, folder: Path, partition: str | None, cpus_per_run: int | None):
        import submitit

        # jobs unpickle bench.run.executors.slurm._run: the repository must be importable there
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(paths.REPO_ROOT), os.environ.get("PYTHONPATH")]))
        os.environ["FTBENCH_CACHE"] = str(paths.cache_dir())
        self.name = "slurm" if cluster == "slurm" else "submitit-local"
        self.executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        self.slots = 10_000 if cluster == "slurm" else 1
        self.partition, self.cpus_per_run = partition, cpus_per_run

    def gpus(self, spec: dict) -> int:
        """gpus_per_node for one run: nproc when it may compute on CUDA, else 0."""
        if spec["device"] == "auto":
            if self.name == "submitit-local":
                from bench.run.hardware import cuda_devices
                has = bool(cuda_devices())
            else:
                has, why = partition_gres(self.partition)
                if has is None:
                    raise BenchError(f"--device auto with --executor slurm: cannot tell whether partition "
                                     f"{self.partition!r} has GPUs: {why}; valid choices: --device cuda, --device cpu")
            return spec.get("nproc", 1) if has else 0
        return spec.get("nproc", 1) if spec["device"] == "cuda" else 0

    def submit(self, spec: dict, *, out_dir):
        gpus = self.gpus(spec)
        params = {"timeout_min": spec["run_timeout_s"] // 60 + 5, "nodes": 1, "tasks_per_node": 1,
                  "gpus_per_node": gpus, "name": f"ftbench-{spec['run_id']}"}
        if self.partition:
            params.update(slurm_partition=self.partition)
        if self.cpus_per_run:
            params.update(cpus_per_task=self.cpus_per_run)
        self.executor.update_parameters(**params)
        asked = {"gpus_requested": gpus, "cpus_requested": self.cpus_per_run}
        return self.executor.submit(_run, spec, str(out_dir), asked)

    def wait(self, handles: list) -> list:
        while True:
            done = [job for job in handles if job.done()]
            if done:
                return [(job, self._result(job)) for job in done]
            time.sleep(1.0)

    def _result(self, job):
        try:
            return job.result()
        except Exception as exc:  # the job failed, timed out at the scheduler, or was cancelled
            return exc

    def cancel(self, handles: list) -> None:
        for job in handles:
            try:
                job.cancel(check=False)
            except Exception:
                pass

    def close(self) -> None:
        pass
