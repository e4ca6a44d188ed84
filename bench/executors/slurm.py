"""Slurm through submitit: one job per run (`--executor slurm --slurm-partition P`), or
submitit's local executor (`--executor submitit-local`), which runs the same job machinery as
subprocesses of this machine: that is how the Slurm path is tested without a cluster.

A Slurm job asks for one node, `gpus_per_node` = nproc for CUDA runs, and a time limit of
the run's timeout plus a margin (the launcher inside the job still enforces the timeout and
records it). The local executor runs one job at a time so runs never share the cores.
"""

import os
import time
from pathlib import Path

from bench import paths


def _run(spec: dict, out_dir: str) -> dict:
    """Body of the job, on the node that runs it: the same launcher as `local`."""
    from bench.launcher import launch

    return launch(spec, out_dir=Path(out_dir), echo=lambda *_: None)


class SubmititExecutor:
    name = "slurm"

    def __init__(self, *, cluster: str, folder: Path, partition: str | None, cpus_per_run: int | None):
        import submitit

        # jobs unpickle bench.executors.slurm._run: the repository must be importable there
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(paths.REPO_ROOT), os.environ.get("PYTHONPATH")]))
        os.environ["FTBENCH_CACHE"] = str(paths.cache_dir())
        self.name = "slurm" if cluster == "slurm" else "submitit-local"
        self.executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        self.slots = 10_000 if cluster == "slurm" else 1
        self.partition, self.cpus_per_run = partition, cpus_per_run

    def submit(self, spec: dict, *, out_dir):
        nproc = spec.get("nproc", 1)
        params = {"timeout_min": spec["run_timeout_s"] // 60 + 5, "nodes": 1, "tasks_per_node": 1,
                  "gpus_per_node": nproc if spec["device"] == "cuda" else 0, "name": f"ftbench-{spec['run_id']}"}
        if self.partition:
            params.update(slurm_partition=self.partition)
        if self.cpus_per_run:
            params.update(cpus_per_task=self.cpus_per_run)
        self.executor.update_parameters(**params)
        return self.executor.submit(_run, spec, str(out_dir))

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
