"""A stand-in for `python -m bench.run.worker SPEC` in tests about the driver, not the child.

    FTBENCH_STUB='{"full": "ok", "lora": "hang", "qlora": "real"}' python -m tests.stub_worker SPEC

Per method (default "ok"):
- ok:   write a minimal ok record to RUN_DIR/result.json at once, as the worker does, and exit 0;
- hang: say it is training, then sleep until killed (a child that never finishes by itself);
- real: become the real worker (os.execv), for the one run a test needs to really train;
- oom:  record status oom with the CPU allocator's message, as the worker does under a budget it
        cannot train in; "oom,data-floor=88" records instead, below seq_len 88, the error the
        worker's data preparation raises when too many examples keep no supervised token.

No torch is imported: a stub run takes the interpreter's start-up time, not the stack's.
"""

import json
import os
import sys
import time
from pathlib import Path

from bench.results.record import now_iso, skeleton
from bench.run.launcher import PROGRESS, RESULT_WRITTEN  # the protocol as the launcher reads it
from bench.util.atomic import write_atomic

ENV = "FTBENCH_STUB"


def behaviour(method: str) -> str:
    return json.loads(os.environ.get(ENV) or "{}").get(method, "ok")


def main(argv: list) -> int:
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text())
    what = behaviour(spec["method"])
    if what == "real":
        os.execv(sys.executable, [sys.executable, "-m", "bench.run.worker", *argv])
    if what == "hang":
        print(f"{PROGRESS}stub: hanging until killed", flush=True)
        while True:
            time.sleep(3600)
    kind, *options = what.split(",")
    if kind not in ("ok", "oom"):
        raise SystemExit(f"unknown stub behaviour {what!r} for {spec['method']}")
    record = skeleton(spec) if kind == "ok" else failed(spec, dict(o.split("=") for o in options))
    record.update(finished_at=now_iso(), wall_s=0.01, loss=[] if spec["method"] == "base" else [1.0] * spec["steps"])
    write_atomic(spec_path.parent / "result.json", json.dumps(record, indent=1))
    print(f"{PROGRESS}stub: {record['status']}", flush=True)
    print(RESULT_WRITTEN, flush=True)
    return 0 if record["status"] == "ok" else 1


# The messages the real worker records: the CPU allocator's, seen under --max-memory, and
# bench.data.prepared's refusal of a sequence length that leaves the data unsupervised
OOM = ("RuntimeError: [enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
       "you tried to allocate 50331648 bytes. Error code 12 (Cannot allocate memory)")
DATA_FLOOR = ("BenchError: {n} of {n} examples (100.0%) lose every supervised token at seq_len {seq_len} "
              "(limit 10%); use a longer seq_len")


def failed(spec: dict, options: dict) -> dict:
    if spec["seq_len"] < int(options.get("data-floor", 0)):
        return skeleton(spec, status="error",
                        error=DATA_FLOOR.format(n=spec["heldout_examples"], seq_len=spec["seq_len"]))
    return skeleton(spec, status="oom", error=OOM)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
