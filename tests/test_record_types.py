"""bench.results.record_types declares the fields docs/schema.md documents, and every key the committed
sample records carry, so the record's shape in code and in prose cannot drift apart."""

import json
import re
from pathlib import Path

from bench.results import record_types as T

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("load", "train", "eval")


def _keys(typed) -> set:
    return set(typed.__required_keys__) | set(typed.__optional_keys__)


def documented() -> dict:
    """{block: field names} from the first table of docs/schema.md: "" for the top level,
    "memory.<phase>" for a phase's figures. A cell listing several names gives later bare
    names the first one's prefix (`memory.<phase>.nvml_used_bytes`, `nvml_total_bytes`)."""
    lines = (ROOT / "docs/schema.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| field | type |")) + 2
    out = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        names = re.findall(r"`([^`]+)`", line.split("|")[1])
        prefix = names[0].rpartition(".")[0]
        for name in names:
            full = name if "." in name or not prefix else f"{prefix}.{name}"
            block, _, field = full.rpartition(".")
            block = re.sub(r"^memory\.(load|train|eval)$", "memory.<phase>", block)
            out.setdefault(block, set()).add(field)
    return out


def test_docs_and_types_name_the_same_fields():
    docs = documented()
    top = docs[""] | {block.split(".")[0] for block in docs if block}
    assert top == _keys(T.Record), "top level: docs/schema.md vs bench.results.record_types.Record"
    assert docs["params"] == _keys(T.Params)
    assert docs["memory"] == _keys(T.Memory) - set(PHASES)
    assert docs["memory.<phase>"] == _keys(T.PhaseMemory)
    assert docs["throughput"] == _keys(T.Throughput)
    assert docs["data"] <= _keys(T.Data)  # the rest of the data block is listed in prose
    assert set(docs) == {"", "params", "memory", "memory.<phase>", "throughput", "data"}


def _samples():
    for path in sorted((ROOT / "reports/samples").rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("schema_version") == 2:
                yield path.relative_to(ROOT), record


def test_committed_sample_records_declare_every_key():
    undeclared = set()
    for path, r in _samples():
        blocks = [("", r, T.Record), ("config", r["config"], T.Spec), ("params", r["params"], T.Params),
                  ("memory", r["memory"], T.Memory), ("throughput", r.get("throughput"), T.Throughput),
                  ("data", r.get("data"), T.Data), ("env", r.get("env"), T.Env)]
        blocks += [(f"memory.{p}", r["memory"].get(p), T.PhaseMemory) for p in PHASES]
        for name, block, typed in blocks:
            undeclared |= {f"{path}: {name}.{k}" for k in (block or {}) if k not in _keys(typed)}
    assert not undeclared, sorted(undeclared)[:20]


def test_required_keys_match_the_schema():
    from bench.results.schema import REQUIRED

    assert set(REQUIRED) <= T.Record.__required_keys__
