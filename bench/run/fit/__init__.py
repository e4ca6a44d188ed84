"""`run_bench.py fit`: the measured OOM frontier, beside the planner's (search.py: the search and
the agreement counts, pure; command.py: the CLI, one real run per probe)."""
