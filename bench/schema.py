"""The run record: the contract between the harness and everything that reads results.

Documented field by field in docs/schema.md. Readers call `upgrade()` on every record they
load: older records are migrated step by step, newer ones are refused with a clear message.
This module imports nothing heavy so the report, gate and planner can use it freely.
"""

SCHEMA_VERSION = 2

STATUSES = ("ok", "oom", "error", "crashed", "timeout", "skipped")
PHASES = ("load", "train", "eval")
METHODS = ("base", "full", "lora", "qlora", "dora", "lora8")

# Top-level keys every record carries, whatever its status.
REQUIRED = (
    "schema_version", "run_id", "spec_hash", "compare_key", "model", "model_path", "method",
    "status", "error", "params", "memory", "throughput", "loss", "mmlu", "config", "env",
)

# Fields that change neither the work nor its figures: left out of `spec_hash`.
NON_WORK_FIELDS = ("out_dir", "run_timeout_s", "resume", "skip_bad_lines")



def _v1_to_v2(record: dict) -> dict:
    """v2 adds seed, group_key, precision, data, heldout and tasks; a v1 record measured none of them."""
    out = dict(record, schema_version=2)
    out.setdefault("seed", (record.get("config") or {}).get("seed"))
    for key in ("group_key", "precision", "data", "heldout"):
        out.setdefault(key, None)
    out.setdefault("tasks", {})
    return out


# step functions: _MIGRATIONS[n] turns a version-n record into version n+1.
_MIGRATIONS = {1: _v1_to_v2}


def upgrade(record: dict, *, where: str = "record") -> dict:
    """Return `record` migrated to SCHEMA_VERSION; raise BenchError for newer or unversioned ones."""
    from bench.errors import BenchError

    version = record.get("schema_version") if isinstance(record, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise BenchError(f"{where}: not an ftbench record (no integer schema_version)")
    if version > SCHEMA_VERSION:
        raise BenchError(
            f"{where}: schema_version {version} is newer than this ftbench understands "
            f"(up to {SCHEMA_VERSION}); upgrade ftbench to read it"
        )
    while version < SCHEMA_VERSION:
        if version not in _MIGRATIONS:
            raise BenchError(f"{where}: schema_version {version} is too old to migrate")
        record = _MIGRATIONS[version](record)
        version = record["schema_version"]
    return record


def problems(record: dict) -> list:
    """Every way `record` breaks the schema, as readable strings (empty list = valid)."""
    out = [f"missing field {key!r}" for key in REQUIRED if key not in record]
    if out:
        return out
    if record["status"] not in STATUSES:
        out.append(f"status {record['status']!r} not one of {STATUSES}")
    if record["method"] not in METHODS:
        out.append(f"method {record['method']!r} not one of {METHODS}")
    if record["status"] != "ok" and not record["error"]:
        out.append("a record that is not ok must say why in 'error'")
    memory = record["memory"]
    if memory.get("device") not in ("cpu", "cuda"):
        out.append("memory.device must be 'cpu' or 'cuda'")
    if record["status"] == "ok":
        for phase in PHASES:
            peak = (memory.get(phase) or {}).get("peak_bytes")
            if not isinstance(peak, int) or peak <= 0:
                out.append(f"memory.{phase}.peak_bytes must be a positive int in an ok record")
        for key in ("trainable", "total"):
            if not isinstance(record["params"].get(key), int):
                out.append(f"params.{key} must be an int in an ok record")
    return out
