"""Command line: `run_bench.py [run options]`, or `run_bench.py {run,report,export,gate,plan,fit} ...`.

Each sub-command lives in its own module exposing `add_parser(subparsers)`, which registers
the sub-command and sets `func(args) -> int`. Bad input raises BenchError anywhere below;
here it becomes one line on stderr and exit code 2.
"""

import importlib
import sys

from bench.util.errors import BenchError

COMMANDS = {
    "run": "bench.run.command",
    "report": "bench.results.report.command",
    "export": "bench.results.export",
    "gate": "bench.results.gate.command",
    "plan": "bench.plan.command",
    "compare": "bench.results.compare.command",
    "fit": "bench.run.fit.command",
}


RUN_IS_DEFAULT = """\
`run` is the default: `run_bench.py [run options]` runs the default profile's matrix.
Its main options (all of them: run_bench.py run --help):
  --profile NAME|FILE     a profile in profiles/ or a .toml/.yaml file (default: default)
  --models M [M ...]      e.g. smollm2-135m tiny-llama shape:llama-3.2-3b, a local directory or a hub id
  --methods X [X ...]     any of: base full lora qlora dora lora8
  --steps N, --seq-len N, --batch-size N, --precision P, --device D
  --data FILE|NAME        training data; --data-check only checks it
  --max-memory SIZE       per-run memory budget, e.g. 8GiB (over it: an oom record)
  --out DIR               output directory (default: ./reports/<profile>)"""


def build_parser(command: str | None = None):
    """The parser with every sub-command, or with `command`'s alone: a sub-command's module may
    import a heavy stack (report: pandas, pyecharts), which a run, a gate or a plan never needs."""
    import argparse

    class Parser(argparse.ArgumentParser):
        """argparse's errors (a bad type, a missing value) as one BenchError line, not usage text."""

        def error(self, message):
            raise BenchError(f"{message} (see {self.prog} --help)")

    parser = Parser(
        prog="run_bench.py",
        description="ftbench: what full fine-tuning, LoRA, QLoRA, DoRA and 8-bit LoRA really cost.",
        epilog=RUN_IS_DEFAULT, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    for name, module in COMMANDS.items():
        if command is not None and name != command:
            continue
        try:
            importlib.import_module(module).add_parser(sub)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (module == exc.name or module.startswith(exc.name + ".")):
                raise
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "run")
    parser = build_parser(argv[0] if argv[0] in COMMANDS else None)
    try:
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except BenchError as exc:
        print(f"ftbench: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, permissions: one line, not a traceback
        where = f" {exc.filename}" if exc.filename else ""
        print(f"ftbench: error: cannot write{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ftbench: interrupted", file=sys.stderr)
        return 130
