"""Write a file so that a reader sees the old file or the whole new one, never half of it.

The one helper for every file ftbench writes whole (run results, predictions, reports,
baselines, exports); results.jsonl is appended instead (bench.results.store). The data go to a
temporary file in the destination's directory, so os.replace is a rename on one file system.
"""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path):
    """Yield a temporary path beside `path`; on success it replaces `path`, on any error it is removed.

    For writers that want a file name (pandas' to_parquet, to_csv) rather than a string.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically; return the path."""
    path = Path(path)
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


@contextmanager
def replacing_dir(path):
    """Yield an empty staging folder beside `path`; on success it replaces the folder `path`
    (readers see the old folder or the whole new one), on any error it is removed."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the cache is shared by every run
    try:
        yield staging
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}-old-{os.getpid()}")
            os.replace(path, old)
        os.replace(staging, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
