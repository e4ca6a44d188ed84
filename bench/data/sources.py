"""The `data` setting -> normal-form examples: a built-in name or a local file. No torch.

`resolve` is cheap (names and paths only) so the driver can reject a bad source before
anything starts; `load` reads and normalises the examples.
"""

from pathlib import Path

from bench.data import builtin, files, formats
from bench.errors import BenchError


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
    """The form the tokenizer sees: Alpaca is rendered into prompt/completion."""
    return "prompt-completion" if fmt == "alpaca" else fmt


def tested(resolved: str) -> list:
    """What the target task of a resolved source tests (built-ins only; a user file has none)."""
    return builtin.tested(resolved) if resolved in builtin.NAMES else []


def load(source: str, *, data_format: str = "auto") -> tuple:
    """(resolved source, format, normal-form examples) for a `data` setting."""
    resolved = resolve(source)
    if data_format not in formats.FORMATS:
        raise BenchError(f"unknown data format {data_format!r}; valid choices: {', '.join(formats.FORMATS)}")
    if resolved in builtin.NAMES:
        if data_format not in ("auto", "prompt-completion"):
            raise BenchError(f"built-in source {resolved!r} is prompt-completion data; data_format must be "
                             f"auto or prompt-completion, not {data_format!r}")
        return resolved, "prompt-completion", builtin.examples(resolved)
    columns, rows = files.read_rows(Path(resolved))
    fmt = formats.detect(columns, forced=data_format, where=f"data file {resolved}")
    return resolved, fmt, formats.examples(rows, fmt, where=f"data file {resolved}")
