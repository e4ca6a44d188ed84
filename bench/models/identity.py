"""A record's canonical model identity: what two runs must share to be runs of the same model,
however the user typed its name. Read from the record alone (no torch, no hub, no file system).

- a built-in (`tiny-llama`, `smollm2-135m`) or a shape (`shape:NAME`): the name;
- a hub model: `org/name@revision`, the revision from the record's `model_revision` where it
  keeps one, else from its resolved snapshot directory (`.../models--org--name/snapshots/REV`);
- a local directory: its resolved absolute path (`model_path`), so `./m` and `/abs/m` are one
  model; a record that never resolved its model keeps the name as typed.

`spec_hash` hashes the model string as typed, so a local directory typed two ways has two
hashes: `work_hash` recomputes it from the record's `config` with the model replaced by its
resolved path (the hash's own recipe, bench.matrix.digest), and is `spec_hash` itself wherever
the typed name already is the canonical one, which is every built-in, shape and hub record.
"""

import re

from bench.models.resolve import BUILTIN

SNAPSHOT = re.compile(r"models--(?P<org>[^/]+?)--(?P<name>[^/]+)/snapshots/(?P<rev>[^/]+)/?$")


def _named(model: str) -> bool:
    return model in BUILTIN or model.startswith("shape:")


def hub_snapshot(path) -> tuple | None:
    """("org/name", revision) for a directory in a Hugging Face cache, else None."""
    found = SNAPSHOT.search(str(path or ""))
    return (f"{found['org']}/{found['name']}", found["rev"]) if found else None


def hub_revision(record: dict) -> str | None:
    """The revision of a hub model's record (`model_revision`, else its snapshot directory), or None."""
    if _named(str(record.get("model"))):
        return None
    hub = hub_snapshot(record.get("model_path"))
    return record.get("model_revision") or (hub[1] if hub else None)


def canonical_name(record: dict) -> str:
    """The model as the hash should have seen it: the resolved path for a local directory, the name otherwise."""
    model, path = str(record.get("model")), record.get("model_path")
    if _named(model) or not path or hub_revision(record):
        return model
    return str(path)


def model_identity(record: dict) -> str:
    """The canonical identity (module docstring)."""
    revision = hub_revision(record)
    return f"{record.get('model')}@{revision}" if revision else canonical_name(record)


def work_hash(record: dict) -> str:
    """spec_hash as if the model had been typed canonically (module docstring)."""
    from bench.matrix import digest
    from bench.schema import NON_WORK_FIELDS

    name, config = canonical_name(record), record.get("config")
    if name == record.get("model") or not isinstance(config, dict) or "model" not in config:
        return record["spec_hash"]
    return digest(dict(config, model=name), drop=NON_WORK_FIELDS + ("profile", "model_path"))
