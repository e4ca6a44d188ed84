"""Match records across baseline and candidate by (model, method, spec_hash).

`spec_hash` already leaves out the fields that don't change the work (schema.NON_WORK_FIELDS),
so equal keys mean the same work; several records with one key are repeats.
"""

from bench.errors import BenchError
from bench.schema import problems


def key_of(record: dict) -> tuple:
    return (record["model"], record["method"], record["spec_hash"])


def run_name(key: tuple) -> str:
    """How a run is named in the table: model, method and the first 8 hex of spec_hash."""
    model, method, spec_hash = key
    return f"{model} {method} {spec_hash[:8]}"


def check_records(records: list, *, side: str) -> None:
    """Refuse records the gate cannot match or read, naming the first bad one."""
    for number, record in enumerate(records, start=1):
        found = problems(record)
        if found:
            name = record.get("run_id") or f"record {number}"
            raise BenchError(f"{side}: {name}: {found[0]}")


def group(records: list) -> dict:
    """key -> [records], in the order keys first appear."""
    groups = {}
    for record in records:
        groups.setdefault(key_of(record), []).append(record)
    return groups


def pair(baseline: list, candidate: list) -> list:
    """[(key, baseline_records, candidate_records)]: baseline order, then candidate-only keys.

    A side with no record for a key gets an empty list.
    """
    base, cand = group(baseline), group(candidate)
    keys = list(base) + [key for key in cand if key not in base]
    return [(key, base.get(key, []), cand.get(key, [])) for key in keys]
