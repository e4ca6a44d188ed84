"""Read a user's data file (JSONL, JSON, CSV or Parquet) through `datasets`, offline.

`datasets`' packaged builders do the parsing (`load_dataset("json" | "csv" | "parquet")`), with
their cache under ftbench's cache, never ~/.cache. Every way a file can be unusable (missing, a
directory, an unknown extension, unparsable, empty) is one BenchError line naming the file and
what would be valid. No torch here: the driver's pre-flight may import this module.
"""

from pathlib import Path

from bench import paths
from bench.errors import BenchError

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


def read_rows(path: Path) -> tuple:
    """(column names, list of row dicts) of a local data file, read through `datasets`."""
    path = Path(path).resolve()
    kind = builder(path)
    if path.stat().st_size == 0:
        raise BenchError(f"data file {path} is empty; give at least one example")
    datasets = _quiet_datasets()
    try:
        options = _csv_options(path, datasets) if kind == "csv" else {}
        table = datasets.load_dataset(kind, data_files=str(path), split="train",
                                      cache_dir=str(paths.hf_home() / "datasets"), **options)
    except Exception as exc:  # pyarrow / json / csv parse errors all mean "not readable as <kind>"
        raise BenchError(f"data file {path} is not readable as {kind}: {_reason(exc)}") from None
    if table.num_rows == 0:
        raise BenchError(f"data file {path} has no rows; give at least one example")
    return list(table.column_names), table.to_list()
