"""Run one spec in a fresh child process and turn whatever happens into a record.

The parent never imports torch. It starts `python -m bench.run.worker`, relays the child's output
(also kept in RUN_DIR/worker.log), kills the child's process group on timeout, and reaps it
with wait4, whose rusage gives the child's exact peak RSS. A child that dies without writing
result.json (a signal, the kernel's OOM killer, a hard crash) is still recorded.
"""

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.results.record import now_iso, skeleton
from bench.run.budget import run_budget
from bench.run.hardware import run_device
from bench.run.worker import PROGRESS, RESULT_WRITTEN
from bench.util import paths

LOOPBACK = "127.0.0.1"  # one node: torchrun's ranks never need another address
EXIT_GRACE_S = 60  # after the result is written; a normal exit takes well under a second


def child_env(spec: dict | None = None, *, device: str | None = None) -> dict:
    """The child's environment. `device` is where the run computes (bench.run.hardware.run_device,
    decided once by the caller); the CPU-only settings go to CPU runs alone."""
    env = dict(os.environ)
    on_cpu = spec is not None and (device or run_device(spec)) == "cpu"
    if on_cpu and spec.get("cpu_malloc_mmap_threshold"):  # device cpu, or auto with no GPU torch can see
        env["MALLOC_MMAP_THRESHOLD_"] = str(spec["cpu_malloc_mmap_threshold"])
    if on_cpu and spec.get("nproc", 1) > 1:  # gloo ranks: talk over the loopback
        env.setdefault("GLOO_SOCKET_IFNAME", loopback_interface())
    env.update(HF_HOME=str(paths.hf_home()), FTBENCH_CACHE=str(paths.cache_dir()),
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1",
               FTBENCH_TTY="1" if sys.stdout.isatty() else "0",  # how often progress lines come (bench.util.progress)
               PYTHONPATH=os.pathsep.join(filter(None, [str(paths.REPO_ROOT), env.get("PYTHONPATH")])))
    return env


def _child_setup(max_bytes: int | None):
    """preexec hook, run in the child before exec.

    - PR_SET_PDEATHSIG: the child dies with the parent, so a killed ftbench leaves no orphan
      run measuring itself against the next one.
    - RLIMIT_DATA: over the memory budget an allocation fails inside the child (recorded as oom)
      instead of the kernel's OOM killer picking a process. Not RLIMIT_AS: that also counts
      1-3 GB of address space that torch's threads and libraries reserve but never touch,
      while the data limit (heap and private anonymous mappings) tracks what tensors use.
    """
    def apply():
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except OSError:
            pass
        if max_bytes:
            resource.setrlimit(resource.RLIMIT_DATA, (max_bytes, max_bytes))
    return apply


def loopback_interface() -> str:
    """The name of the interface holding 127.0.0.1 (lo on Linux, lo0 on macOS)."""
    import socket

    import psutil

    for name, addresses in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == LOOPBACK for a in addresses):
            return name
    return "lo"


def worker_command(spec: dict, spec_path: Path) -> list:
    """`python -m bench.run.worker SPEC`, or under torchrun for nproc > 1: one node, a free rendezvous
    port (--standalone), nproc ranks. torchrun tears every rank down when one fails, and the
    process group (killed on timeout) holds them all. The ranks meet on 127.0.0.1 (MASTER_ADDR,
    from --local-addr; without it torchrun takes the machine's FQDN, whose address a sandboxed
    or firewalled machine may not reach), and CPU runs' gloo binds to the loopback (child_env)."""
    nproc = spec.get("nproc", 1)
    if nproc == 1:
        return [sys.executable, "-m", "bench.run.worker", str(spec_path)]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--local-addr={LOOPBACK}",
            f"--nproc-per-node={nproc}", "-m", "bench.run.worker", str(spec_path)]


def launch(spec: dict, *, out_dir: Path, echo=print) -> dict:
    """Run `spec` (which carries its run_id) and return its record."""
    run_dir = Path(out_dir) / "runs" / spec["run_id"]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.json").write_text(json.dumps(spec, indent=1))
    device = run_device(spec)  # before the child's environment and limits: CPU-only settings follow it
    budget = run_budget(spec, device=device)  # --max-memory, the profile's, or the CPU default (bench.run.budget)
    limit = budget["bytes"] if budget else None
    started, timed_out = time.perf_counter(), threading.Event()
    with open(run_dir / "worker.log", "w", buffering=1) as log:  # line-buffered: tail -f shows each line as it comes
        child = subprocess.Popen(
            worker_command(spec, run_dir / "spec.json"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            env=child_env(spec, device=device), cwd=paths.REPO_ROOT, start_new_session=True,
            preexec_fn=_child_setup(limit),
        )
        killer = threading.Timer(spec["run_timeout_s"], _kill_group, (child.pid, timed_out))
        killer.start()
        grace = []
        try:
            for line in child.stdout:
                log.write(line)
                if line.startswith(PROGRESS):
                    echo("    " + line[len(PROGRESS):].rstrip())
                if line.startswith(RESULT_WRITTEN):
                    # the record is complete: a child still alive after the grace period is stuck
                    # in teardown (seen with torchrun ranks), so it is ended, the result kept
                    grace.append(threading.Timer(EXIT_GRACE_S, _kill_group, (child.pid, None)))
                    grace[-1].start()
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:
            _kill_group(child.pid, None)
            os.wait4(child.pid, 0)
            raise
        finally:
            for timer in [killer, *grace]:
                timer.cancel()
            child.stdout.close()
            child.returncode = -1  # reaped by wait4 above; stop Popen from waiting again
    record = _read_result(run_dir, spec, status, timed_out.is_set(), device=device)
    if limit and record["status"] == "crashed" and _starved(run_dir):
        record.update(status="oom", error=(f"out of memory under {budget['source']} (data-segment limit): "
                                           f"{record['error']}")[:500])
    if budget:
        record["memory"].update(budget_bytes=budget["bytes"], budget_source=budget["source"])
    # ru_maxrss is reset with each phase's peak (clear_refs), so it covers the last phase only;
    # the worker's own running maximum covers the phases before it. Under torchrun, wait4 sees
    # the largest of torchrun and its reaped ranks; the worker reports the max over ranks.
    record["memory"]["wait4_peak_bytes"] = usage.ru_maxrss * 1024
    record["memory"]["process_peak_bytes"] = max(usage.ru_maxrss * 1024, record["memory"].get("worker_peak_bytes") or 0)
    record["wall_s"] = record["wall_s"] or time.perf_counter() - started
    return record


def _kill_group(pid: int, flag) -> None:
    if flag is not None:
        flag.set()
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _read_result(run_dir: Path, spec: dict, status: int, timed_out: bool, *, device: str) -> dict:
    result = run_dir / "result.json"
    if timed_out:
        record = skeleton(spec, status="timeout", error=f"timed out after {spec['run_timeout_s']} s")
    elif result.exists():
        return json.loads(result.read_text())
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        hint = " (likely the kernel's OOM killer)" if sig == signal.SIGKILL else ""
        record = skeleton(spec, status="crashed", error=f"killed by signal {sig} ({signal.Signals(sig).name}){hint}")
    else:
        record = skeleton(spec, status="crashed",
                          error=f"exited with code {os.WEXITSTATUS(status)} without a result: {_last_line(run_dir)}")
    record["finished_at"] = now_iso()
    # the worker never said which device it resolved "auto" to: where this machine would run it
    record["memory"]["device"] = device
    return record


# What a child says when an allocation fails outside Python's reach (the loader, a C++ abort):
# seen under RLIMIT_DATA as "cannot map zero-fill pages", "cannot allocate memory for thread-local
# data: ABORT", and MemoryError before a fatal error; Rust's allocator (the tokenizers library)
# aborts with "memory allocation of N bytes failed" (seen by run_bench.py fit under 560 MiB).
STARVED = ("cannot allocate memory", "can't allocate memory", "cannot map zero-fill pages", "memoryerror",
           "out of memory", "std::bad_alloc", "memory allocation of")


def _starved(run_dir: Path) -> bool:
    """Whether the child's log shows it died for want of memory."""
    text = (run_dir / "worker.log").read_text(errors="replace")[-20000:].lower()
    return any(sign in text for sign in STARVED)


def _last_line(run_dir: Path) -> str:
    lines = [line for line in (run_dir / "worker.log").read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"
