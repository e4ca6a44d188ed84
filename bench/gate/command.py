"""`run_bench.py gate BASELINE CANDIDATE`: the only part of the gate that prints.

Exit codes: 0 pass, 1 regression (or a missing run without --allow-missing), 2 bad input
(raised as BenchError; bench.cli turns it into one line). With --write-baseline the two
paths are RESULTS and the baseline file to write.
"""

from bench import store
from bench.gate.baseline import write_baseline
from bench.gate.compare import compare, exit_code
from bench.gate.match import check_records
from bench.gate.table import describe_env, render_rows, summary
from bench.gate.tolerances import DEFAULT_TOLERANCES, resolve_tolerances


def add_parser(subparsers):
    keys = ", ".join(f"{k}={v:g}" for k, v in DEFAULT_TOLERANCES.items())
    parser = subparsers.add_parser(
        "gate",
        help="compare a candidate's results with a baseline; exit 1 on a regression",
        description="Match runs by (model, method, spec_hash) and give a verdict per metric. "
                    "Exit 0 pass, 1 regression, 2 bad input.",
    )
    parser.add_argument("baseline", metavar="BASELINE", help="baseline results file or directory "
                        "(with --write-baseline: the RESULTS to turn into a baseline)")
    parser.add_argument("candidate", metavar="CANDIDATE", help="candidate results file or directory "
                        "(with --write-baseline: the baseline .jsonl to write, e.g. profiles/baselines/smoke.jsonl)")
    parser.add_argument("--write-baseline", action="store_true",
                        help="write RESULTS to a baseline file instead of gating")
    parser.add_argument("--allow-missing", action="store_true",
                        help="a run present on one side only is named but does not fail the gate")
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
        from bench.errors import BenchError

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
