"""`run_bench.py` as the tests run it: the real CLI, with two test-session substitutions.

    python -m tests.cli_runner ARGS...      # as run_bench.py ARGS...

- FTBENCH_TEST_STARTUP (JSON of bench.run.budget.startup_bytes()): the start-up floor measured once
  for the test session instead of once per invocation (a child that imports the stack, ~10-20 s
  on 2 busy cores). Set by tests.conftest.run_cli whenever a memory budget is given.
- FTBENCH_STUB (JSON {method: ok|hang|real}): each run's child is tests.stub_worker instead of
  bench.run.worker, for tests about the driver (signals, resume, timeouts, the store), not the child;
  the data check's tokenizer child is skipped unless FTBENCH_STUB_DATA_CHECK=1.
Everything else (profile, matrix, budget check, launcher, session, store, report) is the real code.
"""

import json
import os
import sys

from bench import cli
from bench.run import budget, command as run_command, launcher


def stub_command(spec: dict, spec_path) -> list:
    return [sys.executable, "-m", "tests.stub_worker", str(spec_path)]


def main(argv: list) -> int:
    if os.environ.get("FTBENCH_TEST_STARTUP"):
        measured = json.loads(os.environ["FTBENCH_TEST_STARTUP"])
        budget.startup_bytes = lambda: measured
    if os.environ.get("FTBENCH_STUB") is not None:
        launcher.worker_command = stub_command
        if os.environ.get("FTBENCH_STUB_DATA_CHECK") != "1":
            from bench.run.fit import command as fit_command

            run_command.check_data = fit_command.check_data = lambda specs: None
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
