"""Read a user's data file (JSONL, JSON, CSV or Parquet), offline.

JSONL is read line by line with `json`, so a line that is not a JSON object is reported by its
1-based line number (with every other bad line) instead of stopping the whole file: `datasets`'
JSON builder parses the file as one block and reports a byte offset. JSON, CSV and Parquet go
through `datasets`' packaged builders (`load_dataset("json" | "csv" | "parquet")`), with their
cache under ftbench's cache, never ~/.cache; their rows are named "row N", 1-based (a CSV's
header is not a row). Every way a whole file can be unusable (missing, a directory, an unknown
extension, unparsable, empty) is one BenchError line naming the file and what would be valid.
No torch here: the driver's pre-flight may import this module.
"""

import json
from pathlib import Path

from bench.util import paths
from bench.util.errors import BenchError

BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}



def builder(path: Path) -> str:
    """The `datasets` builder for `path`, or BenchError if it is not a readable data file."""
    if not path.exists():
        raise BenchError(f"data file {path} does not exist; give a JSONL, JSON, CSV or Parquet file "
                         "or a built-in name")
    if not path.is_file():
        raise BenchError(f"data source {path} is not a file; give a JSONL, JSON, CSV or Parquet file")
    suffix = path.suffix.lower()
    if suffix not in BUILDERS:
        raise BenchError(f"data file {path} has extension {suffix or '(none)'!r}; valid: {', '.join(BUILDERS)}")
    return BUILDERS[suffix]


def _quiet_datasets():
    import datasets

    datasets.disable_progress_bars()
    # its JSON builder logs the parse error itself before raising: the BenchError says it once
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    return datasets


def _reason(exc: BaseException) -> str:
    """The innermost cause's message: `datasets` wraps the parser's error in a generic one."""
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__
    return " ".join(str(exc).split())[:200] or exc.__class__.__name__


def _csv_options(path: Path, datasets) -> dict:
    """CSV cells are text: otherwise pandas reads " 4" as the int 4 and an empty cell as NaN."""
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    return {"features": datasets.Features({name: datasets.Value("string") for name in header}),
            "keep_default_na": False}


SHOWN_PROBLEMS = 20  # bad rows listed in one message; the rest are counted


def problems_text(problems: list) -> str:
    """'line 7: missing field 'output'; line 41: ...', the first SHOWN_PROBLEMS, then 'and N more'."""
    shown = "; ".join(f"{place}: {why}" for place, why in problems[:SHOWN_PROBLEMS])
    more = len(problems) - SHOWN_PROBLEMS
    return shown + (f"; and {more} more" if more > 0 else "")


class Rows:
    """A data file's rows: `columns` (names, first seen first), `rows` (dicts), `where` (each row's
    place in the file, "line 7" or "row 7", 1-based) and `bad` ((where, why) of the lines that are
    not a row at all, e.g. truncated JSON)."""

    def __init__(self, *, columns, rows, where, bad=()):
        self.columns, self.rows, self.where, self.bad = list(columns), list(rows), list(where), list(bad)


def _jsonl_rows(path: Path) -> Rows:
    columns, rows, where, bad = {}, [], [], []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad.append((f"line {number}", f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
                continue
            if not line.strip():
                continue
            try:
                row = json.loads(line.strip())
            except json.JSONDecodeError as exc:
                bad.append((f"line {number}", f"not valid JSON: {exc.msg} at column {exc.colno}"))
                continue
            if not isinstance(row, dict):
                bad.append((f"line {number}",
                            f"expected a JSON object {{field: value, ...}}, got {type(row).__name__}"))
                continue
            columns.update(dict.fromkeys(row))
            rows.append(row)
            where.append(f"line {number}")
    return Rows(columns=columns, rows=rows, where=where, bad=bad)


def read_rows(path: Path) -> Rows:
    """The rows of a local data file (see Rows); BenchError if the file as a whole is unusable."""
    path = Path(path).resolve()
    kind = builder(path)
    if path.stat().st_size == 0:
        raise BenchError(f"data file {path} is empty; give at least one example")
    if path.suffix.lower() == ".jsonl":
        found = _jsonl_rows(path)
        if not found.rows and found.bad:
            raise BenchError(f"data file {path} is not readable as json lines (one object per line): "
                             f"{problems_text(found.bad)}")
        if not found.rows:
            raise BenchError(f"data file {path} has no rows; give at least one example")
        return found
    datasets = _quiet_datasets()
    try:
        options = _csv_options(path, datasets) if kind == "csv" else {}
        table = datasets.load_dataset(kind, data_files=str(path), split="train",
                                      cache_dir=str(paths.hf_home() / "datasets"), **options)
    except Exception as exc:  # pyarrow / json / csv parse errors all mean "not readable as <kind>"
        raise BenchError(f"data file {path} is not readable as {kind}: {_reason(exc)}") from None
    if table.num_rows == 0:
        raise BenchError(f"data file {path} has no rows; give at least one example")
    return Rows(columns=table.column_names, rows=table.to_list(),
                where=[f"row {n}" for n in range(1, table.num_rows + 1)])
