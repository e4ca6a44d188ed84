#!/usr/bin/env python3
"""Count false alarms: gate runs of the same code against each other.

    PYTHONPATH=. python scripts/false_alarm_check.py RESULTS_1 RESULTS_2 ... [--against-first]

Each RESULTS is a results file or directory from the same code and profile. Consecutive pairs
(1 vs 2, 2 vs 3, ...) are gated with the default tolerances, or `--tolerances FILE`; every
pair that would fail is an alarm, and so a false one. Prints each pair's failing rows and a
last line "false alarms: K of N pairs"; exit 0 if K is 0, 1 otherwise, 2 on bad input.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import store  # noqa: E402
from bench.results.gate.command import render_rows  # noqa: E402
from bench.results.gate.tolerances import resolve_tolerances  # noqa: E402
from bench.results.gate.verdicts import summary
from bench.results.gate.verdicts import PASS, compare, exit_code  # noqa: E402
from bench.util.errors import BenchError  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="two or more results files or directories")
    parser.add_argument("--against-first", action="store_true", help="gate each against the first, not its predecessor")
    parser.add_argument("--tolerances", metavar="FILE", help="TOML file with a [gate] table")
    args = parser.parse_args(argv)
    try:
        if len(args.results) < 2:
            raise BenchError("need at least two results to make a pair")
        tolerances = resolve_tolerances(file=args.tolerances)
        loaded = [store.read(source)[0] for source in args.results]
    except BenchError as exc:
        print(f"false_alarm_check: error: {exc}", file=sys.stderr)
        return 2
    alarms, pairs = 0, 0
    for i in range(1, len(loaded)):
        j = 0 if args.against_first else i - 1
        rows = compare(loaded[j], loaded[i], tolerances=tolerances)
        code = exit_code(rows)
        pairs += 1
        alarms += code != 0
        print(f"{args.results[j]} vs {args.results[i]}: {summary(rows, exit_code=code)}")
        flagged = [row for row in rows if row.verdict != PASS]
        if flagged:
            print(render_rows(flagged))
    print(f"false alarms: {alarms} of {pairs} pairs")
    return 1 if alarms else 0


if __name__ == "__main__":
    sys.exit(main())
