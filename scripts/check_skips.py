"""CI's skip check: every skipped test must have skipped for an absent (or too old) GPU.

    python scripts/check_skips.py PYTEST_LOG      (the output of `pytest -rs`; exit 0 or 1)

A test that skips because something set-up installs is missing (an extra's module-level
importorskip, Chromium, the prepared data) means a broken install, which must fail CI rather than
pass green. So any skip whose reason names no GPU (CUDA, GPU, NVML, compute capability) fails, and
so does a log whose skip count ("N skipped") does not match the reasons listed (no -rs).
"""

import re
import sys
from pathlib import Path

GPU = re.compile(r"\b(cuda|gpus?|nvml)\b|compute capability", re.IGNORECASE)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
FOLDED = re.compile(r"^SKIPPED \[(\d+)\] (.+?): (.*)$")        # SKIPPED [2] tests/x.py:12: reason
UNFOLDED = re.compile(r"^SKIPPED ([^\s\[]\S*)(?: - (?:Skipped: )?(.*))?$")  # SKIPPED tests/x.py::test - Skipped: reason
COUNT = re.compile(r"\b(\d+) skipped\b")
SUMMARY = re.compile(r"\b\d+ (passed|failed|skipped|errors?|deselected|xfailed|xpassed)\b.* in \d+(\.\d+)?s\b")


def skips(log: str) -> tuple[list, int | None]:
    """([(count, where, reason), ...] from the -rs summary, the "N skipped" of the final line or None)."""
    found, total = [], None
    for line in (ANSI.sub("", raw).rstrip() for raw in log.splitlines()):
        if m := FOLDED.match(line):
            found.append((int(m[1]), m[2], m[3]))
        elif m := UNFOLDED.match(line):
            found.append((1, m[1], m[2] or ""))
        elif SUMMARY.search(line):
            m = COUNT.search(line)
            total = int(m[1]) if m else 0
    return found, total


def problems(log: str) -> list:
    """One line per skip that is not a GPU skip, and one about skips the log does not explain."""
    found, total = skips(log)
    bad = [f"not a GPU skip: {where}: {reason or '(no reason given)'}" + (f" [{n} tests]" if n > 1 else "")
           for n, where, reason in found if not GPU.search(reason)]
    listed = sum(n for n, _, _ in found)
    if total is None:
        bad.append("no pytest summary line found: is this pytest's output?")
    elif total != listed:
        bad.append(f"{total} tests skipped but {listed} reasons listed: run pytest with -rs")
    return bad


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python scripts/check_skips.py PYTEST_LOG", file=sys.stderr)
        return 2
    log = Path(args[0]).read_text(errors="replace")
    bad = problems(log)
    for line in bad:
        print(f"check_skips: {line}")
    if bad:
        print(f"check_skips: FAIL: {len(bad)} problem(s); a skip other than an absent GPU means a broken install")
        return 1
    print(f"check_skips: PASS: {sum(n for n, _, _ in skips(log)[0])} skipped, every one for an absent GPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
