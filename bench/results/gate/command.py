"""`run_bench.py gate BASELINE CANDIDATE`: read both sides, let bench.results.gate.verdicts decide, print.

The only part of the gate that prints. Exit codes: 0 pass, 1 regression (or a missing run
without --allow-missing), 2 bad input (raised as BenchError; bench.cli turns it into one
line), including two sides that share no run: a gate that compared nothing checked nothing,
so it fails as input that cannot be gated, with or without --allow-missing. With
--write-baseline the two paths are RESULTS and the baseline file to write: the records stored
whole, repeats kept, each with its `env` (a record without one cannot say where the baseline
came from and is refused); it is a normal results file, so `gate` reads it as-is.
"""

import json
import math
from pathlib import Path

from bench.results import store
from bench.results.gate.tolerances import DEFAULT_TOLERANCES, resolve_tolerances
from bench.results.gate.verdicts import (compare, exit_code, key_of, nothing_shared, check_records, summary,
                                         describe_env)
from bench.util.atomic import write_atomic
from bench.util.errors import BenchError
from bench.util.units import fmt_bytes

HEADER = ("run", "metric", "baseline", "candidate", "change", "verdict", "note")


def add_parser(subparsers):
    keys = ", ".join(f"{k}={v:g}" for k, v in DEFAULT_TOLERANCES.items())
    parser = subparsers.add_parser(
        "gate",
        help="compare a candidate's results with a baseline; exit 1 on a regression",
        description="Match runs by (model identity, method, spec_hash) and give a verdict per metric. "
                    "Exit 0 pass, 1 regression, 2 bad input (including two sides that share no run).",
    )
    parser.add_argument("baseline", metavar="BASELINE", help="baseline results file or directory "
                        "(with --write-baseline: the RESULTS to turn into a baseline)")
    parser.add_argument("candidate", metavar="CANDIDATE", help="candidate results file or directory "
                        "(with --write-baseline: the baseline .jsonl to write, e.g. profiles/baselines/smoke.jsonl)")
    parser.add_argument("--write-baseline", action="store_true",
                        help="write RESULTS to a baseline file instead of gating")
    parser.add_argument("--allow-missing", action="store_true",
                        help="a run present on one side only is named but does not fail the gate "
                        "(two sides that share no run still do: exit 2)")
    parser.add_argument("--fail-inconclusive", action="store_true",
                        help="treat 'inconclusive' (repeats too noisy) as a failure")
    parser.add_argument("--tolerances", metavar="FILE",
                        help="TOML file whose [gate] table overrides the defaults (a profile works)")
    parser.add_argument("--tolerance", metavar="KEY=VALUE", action="append", default=[],
                        help=f"override one tolerance (repeatable); defaults: {keys}")
    parser.add_argument("--skip-bad-lines", action="store_true",
                        help="skip corrupt lines in either file instead of refusing it")
    parser.set_defaults(func=run)
    return parser


def _load(source, *, side, skip_bad_lines):
    records, problems = store.read(source, skip_bad_lines=skip_bad_lines)
    if not records:
        raise BenchError(f"{side} {source} holds no readable records")
    check_records(records, side=f"{side} {source}")
    return records, problems


def run(args) -> int:
    if args.write_baseline:
        records, skipped = _load(args.baseline, side="results", skip_bad_lines=args.skip_bad_lines)
        dest = write_baseline(records=records, dest=args.candidate)
        for line in skipped:
            print(f"skipped: {line}")
        print(f"wrote baseline {dest}: {describe_env(records)}")
        return 0
    tolerances = resolve_tolerances(file=args.tolerances, pairs=args.tolerance)
    baseline, b_skipped = _load(args.baseline, side="baseline", skip_bad_lines=args.skip_bad_lines)
    candidate, c_skipped = _load(args.candidate, side="candidate", skip_bad_lines=args.skip_bad_lines)
    why = nothing_shared(baseline, candidate)
    if why:
        raise BenchError(f"gate {why}")
    rows = compare(baseline, candidate, tolerances=tolerances)
    code = exit_code(rows, allow_missing=args.allow_missing, fail_inconclusive=args.fail_inconclusive)
    print(f"baseline:  {args.baseline}: {describe_env(baseline)}")
    print(f"candidate: {args.candidate}: {describe_env(candidate)}")
    for line in b_skipped + c_skipped:
        print(f"skipped: {line}")
    print()
    print(render_rows(rows))
    print()
    print(summary(rows, exit_code=code))
    return code


def _value(metric, value):
    if value is None or isinstance(value, str):
        return value or "-"
    if metric.endswith("_bytes"):
        return fmt_bytes(value)
    if metric.endswith("tokens_per_s"):
        return f"{value:.1f} tok/s"
    if metric == "mmlu.acc":
        return f"{100 * value:.1f}%"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _change(metric, change):
    if change is None:
        return "-"
    if math.isinf(change):
        return "inf"
    if metric == "mmlu.acc":
        return f"{100 * change:+.1f} pt"
    if isinstance(change, int):
        return f"{change:+,}"
    return f"{100 * change:+.1f}%"


def render_rows(rows: list) -> str:
    """The verdict table: one line per metric and run, columns padded to fit."""
    cells = [HEADER] + [
        (r.run, r.metric, _value(r.metric, r.baseline), _value(r.metric, r.candidate),
         _change(r.metric, r.change), r.verdict, r.note)
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in cells) for i in range(len(HEADER) - 1)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)) + "  " + line[-1] for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def write_baseline(*, records: list, dest) -> Path:
    """Write `records` (sorted by run key, stable) to `dest` atomically; return its path."""
    check_records(records, side="results")
    for number, record in enumerate(records, start=1):
        if not isinstance(record.get("env"), dict) or not record["env"]:
            name = record.get("run_id") or f"record {number}"
            raise BenchError(f"{name} has no env; a baseline must record the environment it came from")
    dest = Path(dest)
    if dest.is_dir():
        raise BenchError(f"baseline destination {dest} is a directory; name a .jsonl file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(records, key=key_of)
    text = "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n" for r in ordered)
    return write_atomic(dest, text)
