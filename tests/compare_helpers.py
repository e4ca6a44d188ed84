"""Shared by the compare tests: fixture directories and minimal records built in memory."""

import json
import shutil
from pathlib import Path

from bench.results import schema

FIXTURES = Path(__file__).parent / "fixtures"
# Subject -> category for the fixtures' subjects, as lm-eval's tags give it (passed in so the
# pairing tests do not depend on lm-eval's files).
CATEGORIES = {
    "abstract_algebra": "stem", "anatomy": "stem", "college_physics": "stem", "high_school_biology": "stem",
    "philosophy": "humanities", "world_religions": "humanities", "high_school_us_history": "humanities",
    "econometrics": "social_sciences", "sociology": "social_sciences",
    "marketing": "other", "virology": "other", "nutrition": "other",
}


def copy_fixture(name: str, dest: Path) -> Path:
    """A writable copy of tests/fixtures/<name>/. The v2 fixtures carry schema_version 2; until
    bench.results.schema knows version 2 (the producer's bump, issue 11 part 8) the copy is relabelled
    with the current version so store.read accepts it. The blocks compare reads are unchanged."""
    target = dest / name
    shutil.copytree(FIXTURES / name, target)
    results = target / "results.jsonl"
    records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    for record in records:
        record["schema_version"] = min(record["schema_version"], schema.SCHEMA_VERSION)
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    return target


def record(method, *, seed=0, model="m", group="g1", policy="fp32", fingerprint="fp", losses=None, ids=None,
           status="ok"):
    """A v2-shaped record with only what pairing reads: identity, precision, data, held-out losses."""
    losses = [2.0, 2.5, 3.0] if losses is None else losses
    return {
        "schema_version": 2, "run_id": f"{model}-{method}-s{seed}", "model": model, "method": method,
        "status": status, "seed": seed, "group_key": group, "compare_key": group + str(seed),
        "precision": {"policy": policy}, "data": {"fingerprint": fingerprint},
        "heldout": {"losses": losses, "ids": ids or [f"e{i}" for i in range(len(losses))]},
        "tasks": {}, "mmlu": None, "config": {"seed": seed},
    }
