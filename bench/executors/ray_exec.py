"""Ray: one task per run, against an existing cluster (--ray-address) or a local one.

Each task asks for the resources its run needs: `num_gpus` = nproc for CUDA runs, and
`num_cpus` = cpus_per_run (default: every core of the driver's machine for CPU runs, so two
CPU runs never share a node's cores and timings stay comparable with `local`). Ray exports
OMP_NUM_THREADS = num_cpus to the task, which the run inherits. The repository and the cache
must be at the same path on every node (a shared file system), as results are written under
the output directory by the node that ran them.
"""

import os
from pathlib import Path

from bench import paths


def _run(spec: dict, out_dir: str, env: dict) -> dict:
    """Body of the Ray task, on the worker node: the same launcher as `local`."""
    os.environ.update(env)
    from bench.launcher import launch

    return launch(spec, out_dir=Path(out_dir), echo=lambda *_: None)


class RayExecutor:
    name = "ray"

    def __init__(self, *, address: str | None, cpus_per_run: int | None):
        import ray

        self.ray = ray
        if address:
            ray.init(address=address, log_to_driver=False)
        else:  # a local cluster for this matrix only; a small object store: records are tiny
            ray.init(num_cpus=os.cpu_count(), object_store_memory=100 * 2**20, include_dashboard=False,
                     log_to_driver=False)
        self.slots = 10_000  # Ray queues tasks until their resources are free
        self.cpus_per_run = cpus_per_run
        self._task = ray.remote(_run)
        self._env = {"FTBENCH_CACHE": str(paths.cache_dir()),
                     "PYTHONPATH": os.pathsep.join(filter(None, [str(paths.REPO_ROOT), os.environ.get("PYTHONPATH")]))}

    def submit(self, spec: dict, *, out_dir):
        nproc = spec.get("nproc", 1)
        cuda = spec["device"] == "cuda"
        cpus = self.cpus_per_run or (nproc if cuda else os.cpu_count())
        options = {"num_cpus": cpus, "num_gpus": nproc if cuda else 0, "max_retries": 0}
        return self._task.options(**options).remote(spec, str(out_dir), self._env)

    def wait(self, handles: list) -> list:
        done, _ = self.ray.wait(handles, num_returns=1)
        out = []
        for ref in done:
            try:
                out.append((ref, self.ray.get(ref)))
            except self.ray.exceptions.RayError as exc:  # the worker died, the node went away, ...
                out.append((ref, exc))
        return out

    def cancel(self, handles: list) -> None:
        for ref in handles:
            self.ray.cancel(ref, force=True)

    def close(self) -> None:
        self.ray.shutdown()
