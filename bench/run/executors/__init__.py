"""Where the runs of a matrix execute: `local` (one child at a time on this machine, the default),
`ray` (one Ray task per run on an existing cluster or a local one) or `slurm` / `submitit-local`
(one submitit job per run). The executor is not part of the work: it never enters a spec, so
spec_hash, --resume and the gate are the same whichever ran a record.

Every executor has the same small interface, driven by bench.run.session.run_matrix:

    slots                        how many runs may be in flight at once
    submit(spec, out_dir=...)    start one run (the spec carries its run_id); returns a handle
    wait(handles)                block until at least one finishes; [(handle, record or the
                                 engine's exception when it lost the run), ...]
    cancel(handles)              stop runs in flight (best effort)
    close()

Every run executes bench.run.launcher.launch on the node that runs it (so the timeout, the
memory budget and the record from the exit status are the same everywhere) and the record
comes back to the driver, the one process that appends to results.jsonl. No torch here.
"""

from bench.util.errors import BenchError

EXECUTORS = ("local", "ray", "slurm", "submitit-local")


def make_executor(name: str, *, out_dir, ray_address: str | None = None, slurm_partition: str | None = None,
                  cpus_per_run: int | None = None):
    if name == "local":
        from bench.run.executors.local import LocalExecutor
        return LocalExecutor()
    if name == "ray":
        from bench.run.executors.ray_exec import RayExecutor
        return RayExecutor(address=ray_address, cpus_per_run=cpus_per_run)
    if name in ("slurm", "submitit-local"):
        from bench.run.executors.slurm import SubmititExecutor
        if name == "slurm" and not slurm_partition:
            raise BenchError("--executor slurm needs --slurm-partition NAME")
        return SubmititExecutor(cluster="slurm" if name == "slurm" else "local", folder=out_dir / "submitit",
                                partition=slurm_partition, cpus_per_run=cpus_per_run)
    raise BenchError(f"unknown executor {name!r}; valid choices: {', '.join(EXECUTORS)}")


def lost_record(spec: dict, *, executor: str, exc: BaseException) -> dict:
    """The record of a run whose executor lost it (a dead Ray worker, a failed Slurm job):
    crashed, with the engine's reason, and no host since the run never reported one."""
    from bench.results.record import now_iso, skeleton
    from bench.results.failure import one_line

    record = skeleton(spec, status="crashed", error=f"{executor}: {one_line(exc)}")
    record["host"], record["finished_at"] = None, now_iso()
    return record
