"""Ray: one task per run, against an existing cluster (--ray-address) or a local one.

Each task asks for the resources its run needs: `num_gpus` = nproc for CUDA runs, and
`num_cpus` = cpus_per_run (default: every core of the driver's machine for CPU runs, so two
CPU runs never share a node's cores and timings stay comparable with `local`). Ray exports
OMP_NUM_THREADS = num_cpus to the task, which the run inherits. The repository and the cache
must be at the same path on every node (a shared file system), as results are written under
the output directory by the node that ran them.

A local cluster (no --ray-address), or one addressed on the loopback, is kept on 127.0.0.1:
Ray otherwise swaps a loopback address for the machine's interface address, which a sandboxed
or firewalled machine may not reach ("Failed to connect to Ray cluster at <interface>:<port>").
"""

import os
from pathlib import Path

from bench import paths


def _run(spec: dict, out_dir: str, env: dict) -> dict:
    """Body of the Ray task, on the worker node: the same launcher as `local`."""
    os.environ.update(env)
    from bench.launcher import launch

    return launch(spec, out_dir=Path(out_dir), echo=lambda *_: None)


LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
# Ray reads this at import: false makes its node-IP lookup answer 127.0.0.1 instead of resolving
# the interface address (the same switch Ray uses on macOS and Windows).
RAY_LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def is_loopback(address: str | None) -> bool:
    """True for no address (a local cluster) or host:port on the loopback."""
    return address is None or address.rsplit(":", 1)[0] in LOOPBACK


class RayExecutor:
    name = "ray"

    def __init__(self, *, address: str | None, cpus_per_run: int | None):
        local = is_loopback(address)
        if local:
            os.environ.update(RAY_LOOPBACK_ENV)
        import ray

        self.ray = ray
        where = {"_node_ip_address": "127.0.0.1"} if local else {}
        if address:
            ray.init(address=address, log_to_driver=False, **where)
        else:  # a local cluster for this matrix only; a small object store: records are tiny
            ray.init(num_cpus=os.cpu_count(), object_store_memory=100 * 2**20, include_dashboard=False,
                     log_to_driver=False, **where)
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
