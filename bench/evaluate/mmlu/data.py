"""The local MMLU files (JSONL from set-up): where they are and whether they can be used.

No heavy imports: the CLI and the task generator check the data before any run starts.
Missing or corrupt data is a BenchError telling the user to run set-up again.
"""

import json
from pathlib import Path

from bench.util import paths
from bench.util.errors import BenchError

SPLITS = ("dev", "test")  # what the mmlu tasks read: test is scored, dev feeds the few-shot examples
SETUP_HINT = "run `bash scripts/setup.sh` (or `python -m bench.util.assets mmlu`) to prepare it"


def split_file(subject: str, split: str) -> Path:
    return paths.mmlu_dir() / subject / f"{split}.jsonl"


def _bad(what: str) -> BenchError:
    return BenchError(f"MMLU data {what}; {SETUP_HINT}")


def check_row(row, *, where: str) -> None:
    """Raise BenchError unless `row` is one well-formed MMLU question."""
    ok = (isinstance(row, dict) and isinstance(row.get("question"), str)
          and isinstance(row.get("choices"), list) and len(row["choices"]) == 4
          and all(isinstance(c, str) for c in row["choices"])
          and isinstance(row.get("answer"), int) and not isinstance(row["answer"], bool)
          and 0 <= row["answer"] <= 3)
    if not ok:
        raise _bad(f"is corrupt at {where}: expected question, 4 choices and answer 0-3")


def check_data(subjects) -> dict:
    """Verify the dev and test JSONL of every subject; return {subject: test question count}."""
    root = paths.mmlu_dir()
    if not (root / "COMPLETE").exists():
        raise _bad(f"is missing from {root}")
    counts = {}
    for subject in subjects:
        for split in SPLITS:
            path = split_file(subject, split)
            if not path.is_file():
                raise _bad(f"is missing: {path}")
            rows = 0
            with open(path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    try:
                        row = json.loads(line)
                    except ValueError:
                        raise _bad(f"is corrupt at {path}:{number}: not JSON") from None
                    check_row(row, where=f"{path}:{number}")
                    rows += 1
            if rows == 0:
                raise _bad(f"is corrupt: {path} is empty")
            if split == "test":
                counts[subject] = rows
    return counts


def cais_mmlu_from_local(original_load_dataset):
    """A `datasets.load_dataset` that serves `cais/mmlu` from the local JSONL and passes every
    other dataset to `original_load_dataset`. Lets lm-eval's own built-in `mmlu` task files run
    offline on the same data as ftbench's tasks (the equivalence check and its tests use it)."""
    def load_dataset(path=None, name=None, **kwargs):
        if path != "cais/mmlu":
            return original_load_dataset(path=path, name=name, **kwargs)
        files = {split: str(split_file(name, split)) for split in SPLITS}
        return original_load_dataset("json", data_files=files, cache_dir=str(paths.hf_home() / "datasets"))
    return load_dataset
