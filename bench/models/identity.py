"""A record's canonical model identity: what two runs must share to be runs of the same model,
however the user typed its name. Read from the record alone (no torch, no hub, no file system).

- a built-in (`tiny-llama`, `smollm2-135m`) or a shape (`shape:NAME`): the name;
- a hub model: `org/name@revision`, from the spec's `model_source` (`hub_id`, `revision`, written
  when the driver fetched it, bench.models.hub) where it has one, else from its resolved snapshot
  directory (`.../models--org--name/snapshots/REV`), so a snapshot typed as a path is the same model;
- a local directory: its resolved absolute path (`model_path`), so `./m` and `/abs/m` are one
  model; a record that never resolved its model keeps the name as typed.

`spec_hash` hashes the model string as typed, so a local directory typed two ways has two
hashes: `work_hash` recomputes it from the record's `config` with the model replaced by its
resolved path (the hash's own recipe, bench.run.matrix.digest), and is `spec_hash` itself wherever
the typed name already is the canonical one, which is every built-in, shape and hub record.
"""

import re

from bench.models.random_weights import is_shape
from bench.models.resolve import BUILTIN

SNAPSHOT = re.compile(r"models--(?P<org>[^/]+?)--(?P<name>[^/]+)/snapshots/(?P<rev>[^/]+)/?$")


def _named(model: str) -> bool:
    return model in BUILTIN or is_shape(model)


def hub_snapshot(path) -> tuple | None:
    """("org/name", revision) for a directory in a Hugging Face cache, else None."""
    found = SNAPSHOT.search(str(path or ""))
    return (f"{found['org']}/{found['name']}", found["rev"]) if found else None


def hub_model(record: dict) -> tuple | None:
    """("org/name", revision) of a hub model's record (module docstring), or None."""
    if _named(str(record.get("model"))):
        return None
    source = (record.get("config") or {}).get("model_source") or {}
    if source.get("hub_id") and source.get("revision"):
        return source["hub_id"], source["revision"]
    return hub_snapshot(record.get("model_path"))


def canonical_name(record: dict) -> str:
    """The model as the hash should have seen it: the resolved path for a local directory, the name otherwise."""
    model, path = str(record.get("model")), record.get("model_path")
    if _named(model) or not path or hub_model(record):
        return model
    return str(path)


def model_identity(record: dict) -> str:
    """The canonical identity (module docstring)."""
    hub = hub_model(record)
    return f"{hub[0]}@{hub[1]}" if hub else canonical_name(record)


def work_hash(record: dict) -> str:
    """spec_hash as if the model had been typed canonically (module docstring)."""
    from bench.run.matrix import LOCATION, digest
    from bench.results.schema import NON_WORK_FIELDS

    name, config = canonical_name(record), record.get("config")
    if name == record.get("model") or not isinstance(config, dict) or "model" not in config:
        return record["spec_hash"]
    return digest(dict(config, model=name), drop=NON_WORK_FIELDS + LOCATION)
