"""`run_bench.py export DIR... --format csv|parquet|jsonl [--out FILE]`: one row per run.

The rows are load.frame()'s: every record flattened by pandas.json_normalize, one column per
leaf named by its dotted path (see docs/export.md). Lists (per-step loss and step times,
held-out per-example losses) and columns whose values mix types are written as JSON strings,
so every format holds plain scalars and a reader can json.loads them back. The file is
written whole or not at all (bench.util.atomic).
"""

import json
from pathlib import Path

import pandas as pd

from bench.results.report import load
from bench.util.atomic import replacing
from bench.util.errors import BenchError, choices_error

FORMATS = ("csv", "parquet", "jsonl")


def add_parser(subparsers) -> None:
    """Register the `export` sub-command."""
    parser = subparsers.add_parser(
        "export", help="write every run of one or more result directories as one table (csv, parquet, jsonl)",
        description="One row per run, nested fields flattened into dotted columns (docs/export.md); "
                    "lists are kept as JSON strings.")
    parser.add_argument("sources", nargs="+", metavar="DIR",
                        help="result directory holding results.jsonl (or the file)")
    parser.add_argument("--format", default=None, metavar="FORMAT",
                        help="csv, parquet or jsonl (default: from --out's suffix, else csv)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="file to write (default: runs.FORMAT in the source directory, or in the "
                             "current directory when several are given)")
    parser.add_argument("--label", action="append", default=None, metavar="NAME",
                        help="the `source` column's value per source, in order (default: each directory's name)")
    parser.set_defaults(func=run)


def _json_cell(value):
    if isinstance(value, float) and value != value:
        return None
    return None if value is None else json.dumps(value, sort_keys=True, allow_nan=False)


def json_columns(wide: pd.DataFrame) -> list:
    """Columns written as JSON strings: those holding lists, and those mixing value types."""
    found = []
    for column in wide.columns:
        if wide[column].dtype == object:
            kinds = {type(v) for v in wide[column] if v is not None and not (isinstance(v, float) and v != v)}
            if len(kinds) > 1 or kinds & {list, dict, tuple}:
                found.append(column)
    return found


def table(wide: pd.DataFrame) -> pd.DataFrame:
    """The export frame: json_columns() as JSON strings, everything else as is."""
    out = wide.copy()
    for column in json_columns(wide):
        out[column] = [_json_cell(v) for v in out[column]]
    return out


def _jsonl(rows: pd.DataFrame) -> str:
    """One JSON object per row, floats exact (repr), NaN as null."""
    lines = []
    for row in rows.to_dict(orient="records"):
        clean = {k: None if isinstance(v, float) and v != v else v for k, v in row.items()}
        lines.append(json.dumps(clean, allow_nan=False, default=lambda o: o.item()) + "\n")
    return "".join(lines)


def export(*, sources: list, fmt: str, out: Path, labels=None) -> Path:
    """Write the runs of `sources` to `out` in `fmt`; BenchError for bad input or an unwritable path."""
    if fmt not in FORMATS:
        raise choices_error("export format", fmt, FORMATS)
    frames = [load.frame(records, source=label)
              for label, records, _ in load.read_sources(sources=[Path(s) for s in sources], labels=labels)]
    rows = table(load.combine(frames))
    out = Path(out)
    if out.is_dir():
        raise BenchError(f"export destination {out} is a directory; name a file, e.g. {out / ('runs.' + fmt)}")
    try:
        with replacing(out) as tmp:
            if fmt == "csv":
                rows.to_csv(tmp, index=False)
            elif fmt == "parquet":
                rows.to_parquet(tmp, index=False)
            else:
                tmp.write_text(_jsonl(rows), encoding="utf-8")
    except OSError as exc:
        raise BenchError(f"cannot write export to {out}: {exc.strerror or exc}; choose a writable --out") from None
    return out


def run(args) -> int:
    suffix = args.out.suffix.lstrip(".") if args.out else ""
    fmt = args.format or (suffix if suffix in FORMATS else "csv")
    if args.out is None:
        first = Path(args.sources[0])
        where = (first if first.is_dir() else first.parent) if len(args.sources) == 1 else Path(".")
        args.out = where / f"runs.{fmt}"
    print(export(sources=args.sources, fmt=fmt, out=args.out, labels=args.label))
    return 0
