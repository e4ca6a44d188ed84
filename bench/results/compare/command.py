"""`run_bench.py compare DIR [DIR ...]`: paired verdicts between methods. The only part that prints.

Exit 0 whenever it could compare (compare reports, it does not gate); bad input (no results,
not the runs it needs, missing or corrupt predictions, a bad option) is a BenchError: one line
and exit 2 through bench.cli.
"""

import json
from dataclasses import asdict

from bench.util.errors import BenchError

DEFAULT_RESAMPLES = 10_000


def add_parser(subparsers) -> None:
    """Register the `compare` sub-command."""
    parser = subparsers.add_parser(
        "compare",
        help="paired verdicts between methods on the same questions (bootstrap interval, McNemar)",
        description="For every pair of methods (each against base, and each against each other) of one "
                    "model and spec: accuracy per scored task, MMLU overall and per category, held-out loss "
                    "per example, with a 95% paired bootstrap interval and a verdict. See docs/compare.md.",
    )
    parser.add_argument("sources", nargs="+", metavar="DIR",
                        help="result directory holding results.jsonl and runs/ (or the results file itself)")
    parser.add_argument("--json", action="store_true", help="print machine-readable rows instead of tables")
    parser.add_argument("--metric", action="append", default=None, metavar="NAME[,NAME]",
                        help="only these metrics (repeatable or comma-separated), e.g. mmlu, mmlu.stem, "
                             "heldout.loss, ftbench_arc_easy; default: all measured")
    parser.add_argument("--resamples", default=str(DEFAULT_RESAMPLES), metavar="N",
                        help=f"bootstrap resamples (default {DEFAULT_RESAMPLES:,})")
    parser.add_argument("--seed", default="0", metavar="N", help="seed of the bootstrap (default 0)")
    parser.add_argument("--adjust", default="holm", metavar="HOW",
                        help="adjust p-values over the family of rows: holm (default) or none")
    parser.set_defaults(func=run)


def _count(text: str, *, option: str, minimum: int, maximum: int, example: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not minimum <= value <= maximum:
        raise BenchError(f"{option} must be an integer from {minimum} to {maximum:,} (e.g. {example}), not {text!r}")
    return value


def _check_comparable(comparison, *, sources, metrics) -> None:
    """Refuse, in one line, a comparison that has nothing to show and say what would be valid."""
    where = ", ".join(map(str, sources))
    if not any(len(methods) > 1 for methods in comparison.groups.values()):
        found = "; ".join(f"{model}: {', '.join(methods)}" for (model, _), methods in comparison.groups.items())
        raise BenchError(f"nothing to compare in {where}: one method per model and spec ({found}); "
                         "compare needs two methods of one model and spec, e.g. base and lora")
    if metrics:
        unknown = [m for m in metrics if m not in comparison.measured]
        if unknown:
            listed = ", ".join(sorted(comparison.measured)) or "none"
            raise BenchError(f"no metric {unknown[0]!r} in {where}; measured per question: {listed}")
    if not comparison.rows and not comparison.unmatched:
        raise BenchError(f"nothing to compare per question in {where}: no pair of runs shares questions "
                         "(records need mmlu or tasks predictions_file, or heldout.losses)")


def run(args) -> int:
    from bench.results.compare.pairs import ADJUSTMENTS, compare_runs
    from bench.results.compare.runs import load_runs
    from bench.results.compare.table import render

    # 10^6 resamples (8 MB of means per row) already fix the percentiles far finer than the table shows.
    resamples = _count(args.resamples, option="--resamples", minimum=1, maximum=10**6, example=f"{DEFAULT_RESAMPLES}")
    seed = _count(args.seed, option="--seed", minimum=0, maximum=2**32 - 1, example="0")
    metrics = [m.strip() for given in args.metric for m in given.split(",") if m.strip()] if args.metric else None
    if args.adjust not in ADJUSTMENTS:
        raise BenchError(f"--adjust must be one of {', '.join(ADJUSTMENTS)}, not {args.adjust!r}")
    runs = load_runs(args.sources)
    comparison = compare_runs(runs, metrics=metrics, resamples=resamples, seed=seed, adjust=args.adjust)
    _check_comparable(comparison, sources=args.sources, metrics=metrics)
    if args.json:
        payload = {"rows": [asdict(r) for r in comparison.rows],
                   "unmatched": [asdict(u) for u in comparison.unmatched],
                   "notes": comparison.notes, "left_out": comparison.left_out,
                   "settings": {"resamples": resamples, "seed": seed, "level": 0.95, "adjust": comparison.adjust,
                                "family": comparison.family,
                                "verdict": "several seeds (scope method): t-interval over seeds (df k-1) "
                                           "excludes 0 and (adjusted) t p < 0.05; one seed (scope checkpoints): "
                                           "bootstrap interval excludes 0 and (adjusted) permutation p < 0.05"}}
        print(json.dumps(payload, indent=1))
    else:
        print(render(comparison, resamples=resamples, seed=seed))
    return 0
