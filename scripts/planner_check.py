"""The planner held against the runs' own measurements: per run and per component, median and max
|error|, as Markdown for the README (bench.results.report.planner_check; the report shows the same).

    .venv/bin/python scripts/planner_check.py [--now] reports/samples/scale-cpu [DIR ...]

Nothing is fitted: each run's estimate is the one the worker made with the constants of its day,
or with --now the one this release's planner makes for the run's recorded settings.
Bad input (a missing directory, a corrupt line) is one `ftbench: error:` line and exit 2.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results.report.load import read_sources  # noqa: E402
from bench.results.report.planner_check import markdown  # noqa: E402
from bench.util.errors import BenchError  # noqa: E402


def main(argv) -> int:
    now = "--now" in argv
    argv = [a for a in argv if a != "--now"]
    if not argv or argv[0].startswith("-"):
        print(__doc__)
        return 2
    try:
        read = read_sources(sources=[Path(a) for a in argv])
    except BenchError as exc:
        print(f"ftbench: error: {exc}", file=sys.stderr)
        return 2
    print(markdown([r for _, records, _ in read for r in records], now=now))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
