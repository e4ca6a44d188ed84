"""A stand-in for `python -m bench.worker SPEC` in tests about the driver, not the child.

    FTBENCH_STUB='{"full": "ok", "lora": "hang", "qlora": "real"}' python -m tests.stub_worker SPEC

Per method (default "ok"):
- ok:   write a minimal ok record to RUN_DIR/result.json at once, as the worker does, and exit 0;
- hang: say it is training, then sleep until killed (a child that never finishes by itself);
- real: become the real worker (os.execv), for the one run a test needs to really train.

No torch is imported: a stub run takes the interpreter's start-up time, not the stack's.
"""

import json
import os
import sys
import time
from pathlib import Path

from bench.atomic import write_atomic
from bench.record import now_iso, skeleton
from bench.launcher import PROGRESS, RESULT_WRITTEN  # the protocol as the launcher reads it

ENV = "FTBENCH_STUB"


def behaviour(method: str) -> str:
    return json.loads(os.environ.get(ENV) or "{}").get(method, "ok")


def main(argv: list) -> int:
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text())
    what = behaviour(spec["method"])
    if what == "real":
        os.execv(sys.executable, [sys.executable, "-m", "bench.worker", *argv])
    if what == "hang":
        print(f"{PROGRESS}stub: hanging until killed", flush=True)
        while True:
            time.sleep(3600)
    if what != "ok":
        raise SystemExit(f"unknown stub behaviour {what!r} for {spec['method']}")
    record = skeleton(spec)
    record.update(finished_at=now_iso(), wall_s=0.01, loss=[] if spec["method"] == "base" else [1.0] * spec["steps"])
    write_atomic(spec_path.parent / "result.json", json.dumps(record, indent=1))
    print(f"{PROGRESS}stub: ok", flush=True)
    print(RESULT_WRITTEN, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
