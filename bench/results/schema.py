"""The run record: the contract between the harness and everything that reads results.

Documented field by field in docs/schema.md. Readers call `upgrade()` on every record they
load: older records are migrated step by step, newer ones are refused with a clear message.
This module imports nothing heavy so the report, gate and planner can use it freely.
"""

from bench.method_table import KBIT, NAMES

SCHEMA_VERSION = 2

STATUSES = ("ok", "oom", "error", "crashed", "timeout", "skipped")
PHASES = ("load", "train", "eval")
METHODS = NAMES  # bench.method_table

# Top-level keys every record carries, whatever its status.
REQUIRED = (
    "schema_version", "run_id", "spec_hash", "compare_key", "model", "model_path", "method",
    "status", "error", "params", "memory", "throughput", "loss", "mmlu", "config", "env",
    "seed", "group_key", "precision", "data", "heldout", "tasks",
)

# Fields that change neither the work nor its figures: left out of `spec_hash`.
NON_WORK_FIELDS = ("out_dir", "run_timeout_s", "resume", "skip_bad_lines", "memory_budget")

V1_POLICY = {"float32": "fp32", "bfloat16": "bf16-true", "float16": "fp16-true"}


def _v1_to_v2(record: dict) -> dict:
    """v2 added seeds, the precision policy, the data block, held-out loss and target tasks.
    A v1 run had one seed (config.seed), loaded the model in config.compute_dtype with no
    autocast, trained on MMLU's validation split with the loss on the whole prompt, and
    measured no held-out loss."""
    config = record.get("config") or {}
    dtype = config.get("compute_dtype")
    out = dict(record, schema_version=2)
    out.setdefault("seed", config.get("seed"))
    out.setdefault("group_key", None)
    out.setdefault("precision", None if dtype is None else {
        "requested": dtype, "policy": V1_POLICY.get(dtype, dtype), "reason": "schema v1: model loaded in compute_dtype",
        "weights_dtype": dtype, "autocast_dtype": None, "grad_scaler": False, "compute_dtype": dtype,
        "adapter_dtype": "float32", "kbit_upcast": record.get("method") in KBIT, "calibration": None})
    out.setdefault("data", {"source": config.get("data"), "format": "text", "train_on_prompt": True}
                   if config.get("data") else None)
    out.setdefault("heldout", None)
    out["tasks"] = {name: dict(block, role="extra") for name, block in (record.get("tasks") or {}).items()}
    return out


# step functions: _MIGRATIONS[n] turns a version-n record into version n+1.
_MIGRATIONS = {1: _v1_to_v2}


def upgrade(record: dict, *, where: str = "record") -> dict:
    """Return `record` migrated to SCHEMA_VERSION; raise BenchError for newer or unversioned ones."""
    from bench.util.errors import BenchError

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
    throughput = record["throughput"] or {}
    mfu = throughput.get("mfu")
    if mfu is not None and mfu <= 0:
        out.append(f"throughput.mfu is {100 * mfu:.1f}%: a run that trained did some work")
    if mfu is not None and mfu > 1 and not throughput.get("mfu_flag"):
        # above 100% is data, flagged with its reason (bench.measure.flops.flag), never a failed run
        out.append(f"throughput.mfu is {100 * mfu:.1f}% without throughput.mfu_flag saying why")
    return out
