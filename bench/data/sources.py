"""The `data` setting -> normal-form examples: a built-in name or a local file. No torch.

`resolve` is cheap (names and paths only) so the driver can reject a bad source before
anything starts; `load` reads and normalises the examples.
"""

from pathlib import Path

from bench.data import builtin, files, formats
from bench.util.errors import BenchError


def resolve(source: str) -> str:
    """A built-in name as given, or the file's absolute path; BenchError if it is neither."""
    if not isinstance(source, str) or not source:
        raise BenchError(f"data source {source!r} is not valid; give a file path or one of {', '.join(builtin.NAMES)}")
    if source in builtin.NAMES:
        return source
    path = Path(source).expanduser()
    if not path.exists() and "/" not in source and path.suffix.lower() not in files.BUILDERS:
        raise BenchError(f"data source {source!r} is neither a built-in ({', '.join(builtin.NAMES)}) nor an "
                         "existing file; give one of those or a JSONL, JSON, CSV or Parquet path")
    files.builder(path)  # raises for a missing file, a directory or an unknown extension
    return str(path.resolve())


def normal_form(fmt: str) -> str:
    """The form the tokenizer sees: Alpaca is rendered into prompt/completion, ShareGPT is chat."""
    return {"alpaca": "prompt-completion", "sharegpt": "chat"}.get(fmt, fmt)


def tested(resolved: str) -> list:
    """What the target task of a resolved source tests (built-ins only; a user file has none)."""
    return builtin.tested(resolved) if resolved in builtin.NAMES else []


def _place_order(problem: tuple) -> int:
    return int(problem[0].rsplit(" ", 1)[-1])


def load(source: str, *, data_format: str = "auto", skip_bad_rows: bool = False) -> tuple:
    """(resolved source, format, normal-form examples, skipped) for a `data` setting. Every row
    that cannot be read or does not fit the format is listed in one BenchError, unless
    skip_bad_rows: then they are left out and `skipped` holds their (place, why) pairs."""
    resolved = resolve(source)
    if data_format not in formats.FORMATS:
        raise BenchError(f"unknown data format {data_format!r}; valid choices: {', '.join(formats.FORMATS)}")
    if resolved in builtin.NAMES:
        if data_format not in ("auto", "prompt-completion"):
            raise BenchError(f"built-in source {resolved!r} is prompt-completion data; data_format must be "
                             f"auto or prompt-completion, not {data_format!r}")
        return resolved, "prompt-completion", builtin.examples(resolved), []
    found = files.read_rows(Path(resolved))
    fmt = formats.detect(found.columns, forced=data_format, where=f"data file {resolved}")
    examples, problems = formats.examples(found.rows, fmt, where=found.where)
    problems = sorted(found.bad + problems, key=_place_order)
    if problems and (not skip_bad_rows or not examples):
        rows = "line" if resolved.lower().endswith(".jsonl") else "row"
        fix = ("fix them, or pass --skip-bad-rows (data.skip_bad_rows = true) to train on the other "
               f"{len(examples):,}" if examples else "no good rows are left")
        raise BenchError(f"data file {resolved}: {len(problems):,} bad {rows}{'s' if len(problems) > 1 else ''} "
                         f"for {fmt} data: {files.problems_text(problems)}; {fix}")
    return resolved, fmt, examples, problems
