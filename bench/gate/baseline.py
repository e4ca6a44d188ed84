"""Write a baseline: the records of a results file, checked and stored whole, repeats kept.

Each record already carries `env` (git sha, packages, hardware) and, from the harness,
`env.calibration`; a record without `env` cannot say where the baseline came from and is
refused. The file is a normal results file, so `gate` and `store.read` read it as-is.
"""

import json
import os
from pathlib import Path

from bench.errors import BenchError
from bench.gate.match import check_records, key_of


def write_baseline(*, records: list, dest) -> Path:
    """Write `records` (sorted by run key, stable) to `dest` atomically; return its path."""
    check_records(records, side="results")
    for number, record in enumerate(records, start=1):
        if not isinstance(record.get("env"), dict) or not record["env"]:
            name = record.get("run_id") or f"record {number}"
            raise BenchError(f"{name} has no env; a baseline must record the environment it came from")
    dest = Path(dest)
    if dest.is_dir():
        raise BenchError(f"baseline destination {dest} is a directory; name a .jsonl file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(records, key=key_of)
    text = "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n" for r in ordered)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, dest)
    return dest
