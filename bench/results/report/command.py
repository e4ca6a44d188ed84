"""`run_bench.py report DIR [DIR ...]`: rebuild index.html from results.jsonl alone, no rerun.
`run_bench.py report BASELINE CANDIDATE --compare`: compare.html, the runs matched as the gate
matches them, with the change of each figure and the gate's verdict (exit 0 whatever the verdict:
the gate sub-command is what fails a build)."""

from pathlib import Path

DEFAULT_MULTI_OUT = Path("reports/latest")


def add_parser(subparsers) -> None:
    """Register the `report` sub-command."""
    parser = subparsers.add_parser(
        "report",
        help="build the HTML report from one or more result directories",
        description="Build index.html (and headline.svg when node is installed) from results.jsonl "
                    "alone. Several directories combine into one report, e.g. to compare machines "
                    "or versions; each is labelled.",
    )
    parser.add_argument("sources", nargs="+", metavar="DIR",
                        help="result directory holding results.jsonl (or the results file itself)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="where to write index.html; default: the source directory when one is "
                             f"given, {DEFAULT_MULTI_OUT}/ (relative to the current directory) when several are")
    parser.add_argument("--label", action="append", default=None, metavar="NAME",
                        help="name of a source in the report; repeat once per source, in order "
                             "(default: each directory's name)")
    parser.add_argument("--skip-bad-lines", action="store_true",
                        help="report the good lines of a results file with corrupt ones, and list the "
                             "bad lines on the page (default: stop at the first, naming its line)")
    parser.add_argument("--no-image", action="store_true", help="skip the static SVG of the headline chart")
    parser.add_argument("--compare", action="store_true",
                        help="with two sources BASELINE CANDIDATE: write compare.html (default: in CANDIDATE) "
                             "with each matched run's changes and the gate's verdict")
    parser.set_defaults(func=run)


def default_out(sources: list) -> Path:
    """One source: its directory (the report sits beside results.jsonl). Several: reports/latest."""
    if len(sources) > 1:
        return DEFAULT_MULTI_OUT
    source = Path(sources[0])
    return source.parent if source.suffix == ".jsonl" else source


def run(args) -> int:
    from bench.results.report import build

    if args.compare:
        return _compare(args)
    out = args.out or default_out(args.sources)
    index = build(sources=[Path(s) for s in args.sources], out_dir=out, labels=args.label,
                  skip_bad_lines=args.skip_bad_lines, image_svg=not args.no_image)
    print(index)
    return 0


def _compare(args) -> int:
    from bench.util.errors import BenchError
    from bench.results.report.compare_page import build_compare

    if len(args.sources) != 2:
        raise BenchError(f"--compare takes exactly two sources, BASELINE and CANDIDATE; got {len(args.sources)}")
    if args.label is not None and len(args.label) != 2:
        raise BenchError(f"got {len(args.label)} labels for 2 sources; give one label per source")
    out = args.out or default_out(args.sources[1:])
    print(build_compare(baseline=args.sources[0], candidate=args.sources[1], out_dir=out, labels=args.label,
                        skip_bad_lines=args.skip_bad_lines))
    return 0
