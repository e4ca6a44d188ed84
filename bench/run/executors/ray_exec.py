"""Ray: one task per run, against an existing cluster (--ray-address) or a new local one.

Each task asks for what its run needs and the cluster can give: `num_gpus` = nproc for a run that
may compute on CUDA (device cuda, or auto on a cluster with GPUs, `ray.cluster_resources()`: a
task given no GPU sees an empty CUDA_VISIBLE_DEVICES and would record a CPU run on a GPU cluster),
and `num_cpus` = --cpus-per-run, or else the smaller of the run's request (nproc for GPU tasks,
every core of the driver's machine for CPU runs, so two CPU runs never share a node's cores and
timings stay comparable with `local`) and the largest node's CPUs. A task that asks for more than
any node has would wait in Ray's queue forever, so that is refused: --cpus-per-run above the
largest node is one error line at start, a CUDA run needing more GPUs than any node has is a
failed record. Ray exports OMP_NUM_THREADS = num_cpus to the task, which the run inherits (its
record's env.threads). The repository and the cache must be at the same path on every node (a
shared file system), as results are written under the output directory by the node that ran them.

A local cluster (no --ray-address) is always a new one (`address="local"`): never a cluster named
by a `ray_current_cluster` file a stopped cluster left in Ray's temp directory, nor by RAY_ADDRESS.

Token authentication (Ray 2.60: a new local `ray.init()` turns it on and writes ~/.ray/auth_token;
`ray start --head` turns it on whenever a token exists; a driver given an explicit address turns it
on only when told):
- the local cluster is this matrix's alone: it runs in token mode with a fresh token passed in the
  environment (RAY_AUTH_TOKEN), which Ray reads before any token file, so a token left in ~/.ray
  neither breaks it nor is written by it;
- joining a cluster, unless RAY_AUTH_MODE says otherwise, the driver uses token mode whenever a
  token is available (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token), the rule `ray start`
  applies to the head: a cluster without authentication accepts such a driver too.
Any Ray failure is one line: at start an error (exit 2), during the matrix a crashed record.

A local cluster, or one addressed on the loopback, is kept on 127.0.0.1: Ray otherwise swaps a
loopback address for the machine's interface address, which a sandboxed or firewalled machine may
not reach ("Failed to connect to Ray cluster at <interface>:<port>").
"""

import logging
import os
import secrets
import socket
from pathlib import Path

from bench.run.worker import one_line
from bench.util import paths
from bench.util.errors import BenchError


def _run(spec: dict, out_dir: str, env: dict, asked: dict) -> dict:
    """Body of the Ray task, on the worker node: the same launcher as `local`. The record says
    what the task asked for and the CUDA_VISIBLE_DEVICES Ray gave it."""
    os.environ.update(env)
    from bench.run.launcher import launch

    record = launch(spec, out_dir=Path(out_dir), echo=lambda *_: None)
    record["resources"] = {**asked, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    return record


LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
# Ray reads this at import: false makes its node-IP lookup answer 127.0.0.1 instead of resolving
# the interface address (the same switch Ray uses on macOS and Windows).
RAY_LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
TOKEN_HINT = ("if the cluster uses token authentication, give its token in RAY_AUTH_TOKEN or "
              "RAY_AUTH_TOKEN_PATH (with RAY_AUTH_MODE=token)")


def is_loopback(address: str | None) -> bool:
    """True for no address (a local cluster) or host:port on the loopback."""
    return address is None or address.rsplit(":", 1)[0] in LOOPBACK


def token_available(environ=os.environ) -> bool:
    """Whether Ray would find a token: RAY_AUTH_TOKEN, else the file at RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token."""
    if environ.get("RAY_AUTH_TOKEN"):
        return True
    path = environ.get("RAY_AUTH_TOKEN_PATH") or Path(environ.get("HOME") or Path.home()) / ".ray" / "auth_token"
    return Path(path).is_file()


def auth_env(address: str | None, environ=os.environ) -> dict:
    """The RAY_AUTH_* settings the driver runs with (applied before Ray is imported)."""
    if address is None:  # our own cluster: token mode, a token nobody else holds
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    if "RAY_AUTH_MODE" in environ:
        return {}
    return {"RAY_AUTH_MODE": "token"} if token_available(environ) else {}


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Refuse an address where nothing listens: Ray would retry it for minutes (measured: still
    retrying a closed port after 5 min), printing nothing useful."""
    host, _, port = address.rpartition("://")[2].rpartition(":")
    if not port.isdigit():
        return  # not host:port; Ray judges it
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise BenchError(f"cannot join the Ray cluster at {address}: nothing answers there ({exc.strerror or exc}); "
                         "start one with `ray start --head`, or leave out --ray-address for a local cluster") from None


def largest_node(nodes: list) -> dict:
    """{"CPU": n, "GPU": m}: the most of each that one alive node offers (ray.nodes())."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive")]
    return {kind: max((r.get(kind, 0) for r in alive), default=0) for kind in ("CPU", "GPU")}


def task_gpus(*, spec: dict, cluster_gpus: float) -> int:
    """num_gpus for one run's task: nproc when the run may compute on CUDA (device cuda, or auto
    on a cluster that has GPUs), else 0."""
    if spec["device"] == "cuda" or (spec["device"] == "auto" and cluster_gpus > 0):
        return spec.get("nproc", 1)
    return 0


def task_cpus(*, spec: dict, cpus_per_run: int | None, node_cpus: float, gpus: int | None = None) -> int:
    """num_cpus for one run's task: --cpus-per-run, else min(the run's request, the largest node)."""
    if cpus_per_run:
        return cpus_per_run
    gpus = (spec.get("nproc", 1) if spec["device"] == "cuda" else 0) if gpus is None else gpus
    want = gpus if gpus else os.cpu_count()
    return max(1, min(want, int(node_cpus)))


class Lost:
    """A run Ray could not take (submission failed, or no node can ever hold it): a handle that
    comes back from wait() at once with its reason."""

    def __init__(self, exc: BaseException):
        self.exc = exc


class RayExecutor:
    name = "ray"

    def __init__(self, *, address: str | None, cpus_per_run: int | None):
        local = is_loopback(address)
        if address:
            check_reachable(address)
        os.environ.update({**(RAY_LOOPBACK_ENV if local else {}), **auth_env(address)})
        try:
            import ray
        except ImportError:
            raise BenchError("--executor ray needs ray: pip install -e .[scale]") from None
        self.ray = ray
        where = {"_node_ip_address": "127.0.0.1"} if local else {}
        quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
        try:
            if address:
                ray.init(address=address, **quiet, **where)
            else:  # a new local cluster for this matrix only; a small object store: records are tiny
                ray.init(address="local", num_cpus=os.cpu_count(), object_store_memory=100 * 2**20,
                         include_dashboard=False, **quiet, **where)
            self.largest = largest_node(ray.nodes())
            self.cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
        except Exception as exc:  # noqa: BLE001  (Ray raises many kinds; each is one line here)
            self.close()
            what = f"cannot join the Ray cluster at {address}" if address else "cannot start a local Ray cluster"
            raise BenchError(f"{what}: {one_line(exc)[:300]}" + (f"; {TOKEN_HINT}" if address else "")) from None
        if self.largest["CPU"] < 1:
            self.close()
            raise BenchError(f"the Ray cluster at {address or 'local'} has no node with a CPU: "
                             "the runs would wait forever")
        if cpus_per_run and cpus_per_run > self.largest["CPU"]:
            self.close()
            raise BenchError(f"--cpus-per-run {cpus_per_run} is more than any Ray node has "
                             f"(the largest has {self.largest['CPU']:g} CPUs): the runs would wait forever")
        self.slots = 10_000  # Ray queues tasks until their resources are free
        self.cpus_per_run = cpus_per_run
        self._task = ray.remote(_run)
        self._env = {"FTBENCH_CACHE": str(paths.cache_dir()),
                     "PYTHONPATH": os.pathsep.join(filter(None, [str(paths.REPO_ROOT), os.environ.get("PYTHONPATH")]))}

    def submit(self, spec: dict, *, out_dir):
        gpus = task_gpus(spec=spec, cluster_gpus=self.cluster_gpus)
        if gpus > self.largest["GPU"]:
            return Lost(RuntimeError(f"no Ray node has {gpus} GPUs (the largest has {self.largest['GPU']:g})"))
        cpus = task_cpus(spec=spec, cpus_per_run=self.cpus_per_run, node_cpus=self.largest["CPU"], gpus=gpus)
        asked = {"gpus_requested": gpus, "cpus_requested": cpus}
        try:
            return self._task.options(num_cpus=cpus, num_gpus=gpus, max_retries=0).remote(spec, str(out_dir), self._env,
                                                                                         asked)
        except Exception as exc:  # noqa: BLE001  (the cluster went away: a crashed record, not a traceback)
            return Lost(exc)

    def wait(self, handles: list) -> list:
        lost = [h for h in handles if isinstance(h, Lost)]
        if lost:
            return [(h, h.exc) for h in lost]
        try:
            done, _ = self.ray.wait(handles, num_returns=1)
        except Exception as exc:  # noqa: BLE001  (the cluster went away under the matrix)
            return [(ref, exc) for ref in handles]
        out = []
        for ref in done:
            try:
                out.append((ref, self.ray.get(ref)))
            except Exception as exc:  # noqa: BLE001  (the worker died, the node went away, ...)
                out.append((ref, exc))
        return out

    def cancel(self, handles: list) -> None:
        for ref in handles:
            if not isinstance(ref, Lost):
                try:
                    self.ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001  (best effort: the cluster may be gone)
                    pass

    def close(self) -> None:
        try:
            self.ray.shutdown()
        except Exception:  # noqa: BLE001  (nothing left to stop)
            pass
