#!/usr/bin/env python3
"""ftbench entry point. `python run_bench.py --help` lists the sub-commands."""

import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
