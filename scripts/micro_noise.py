#!/usr/bin/env python3
"""Measure the micro-benchmarks' noise and choose scripts/micro_bench.sh's threshold from it.

    PYTHONPATH=. python scripts/micro_noise.py measure DIR [--runs 4]   # alternate plain and slowed sessions
    PYTHONPATH=. python scripts/micro_noise.py analyse DIR               # rates per threshold

`measure` runs the micro-benchmarks (the same pytest-benchmark flags as micro_bench.sh) 2 x RUNS
times, alternating a plain session and one with FTBENCH_MICRO_SLOWDOWN=1.25 (every timed call
made 25% slower), so machine load falls on both alike; each session's JSON goes to DIR.
`analyse` compares sessions as micro_bench.sh does, on each benchmark's `min`:
  - false alarm: a plain session gated against another plain one (every ordered pair) fails,
    that is some benchmark is slower than the threshold;
  - missed regression: a slowed session gated against a plain one passes the benchmark
    (per benchmark), or passes the whole suite (per pair).
It prints both rates for thresholds from 5% to 100% and the smallest threshold with no false alarm.
"""

import argparse
import json
import os
import subprocess
import sys
from itertools import permutations
from pathlib import Path

FLAGS = ["--benchmark-enable", "--benchmark-only", "--benchmark-warmup=on", "--benchmark-min-rounds=15",
         "--benchmark-max-time=2"]
SLOWDOWN = 1.25
THRESHOLDS = (5, 10, 15, 20, 25, 30, 40, 50, 75, 100)


def measure(out: Path, runs: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for i in range(runs):
        for kind, slowdown in (("plain", "1"), ("slow", str(SLOWDOWN))):
            path = out / f"{kind}-{i}.json"
            env = dict(os.environ, FTBENCH_MICRO_SLOWDOWN=slowdown, PYTHONPATH=".")
            cmd = [sys.executable, "-m", "pytest", "tests/benchmarks", "-q", "-p", "no:cacheprovider", *FLAGS,
                   f"--benchmark-json={path}"]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            print(f"{path.name}: pytest exit {done.returncode}", flush=True)
            if done.returncode != 0:
                sys.exit(done.stdout[-2000:])


def mins(path: Path) -> dict:
    return {b["name"]: b["stats"]["min"] for b in json.loads(path.read_text())["benchmarks"]}


def rates(plain: list, slow: list, threshold_pct: float) -> dict:
    limit = 1 + threshold_pct / 100
    false_pairs = [(a, b) for a, b in permutations(plain, 2)]
    alarms = sum(any(b[k] / a[k] > limit for k in a) for a, b in false_pairs)
    slow_pairs = [(a, s) for a in plain for s in slow]
    missed_pairs = sum(not any(s[k] / a[k] > limit for k in a) for a, s in slow_pairs)
    checks = [(s[k] / a[k]) for a, s in slow_pairs for k in a]
    missed_checks = sum(r <= limit for r in checks)
    return {"false_alarm_pairs": (alarms, len(false_pairs)), "missed_pairs": (missed_pairs, len(slow_pairs)),
            "missed_checks": (missed_checks, len(checks))}


def analyse(out: Path) -> None:
    plain = [mins(p) for p in sorted(out.glob("plain-*.json"))]
    slow = [mins(p) for p in sorted(out.glob("slow-*.json"))]
    if len(plain) < 2 or not slow:
        sys.exit(f"need at least 2 plain and 1 slowed session in {out}")
    names = sorted(plain[0])
    print("min ratio, plain vs plain (every ordered pair), per benchmark: lowest .. highest")
    for name in names:
        ratios = [b[name] / a[name] for a, b in permutations(plain, 2)]
        slowed = [s[name] / a[name] for a in plain for s in slow]
        print(f"  {name:40s} plain {min(ratios):.3f} .. {max(ratios):.3f}   slowed {min(slowed):.3f} .. {max(slowed):.3f}")
    print(f"\nthreshold  false alarms (pairs)  missed 25% slowdown (pairs)  missed (benchmark checks)")
    chosen = None
    for t in THRESHOLDS:
        r = rates(plain, slow, t)
        fa, mp, mc = r["false_alarm_pairs"], r["missed_pairs"], r["missed_checks"]
        print(f"  min:{t}%{'':<4} {fa[0]:>3} of {fa[1]:<14} {mp[0]:>3} of {mp[1]:<22} {mc[0]:>4} of {mc[1]}")
        if chosen is None and fa[0] == 0:
            chosen = t
    print(f"\nsmallest threshold with no false alarm in these sessions: min:{chosen}%")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("measure", "analyse"))
    parser.add_argument("dir", type=Path)
    parser.add_argument("--runs", type=int, default=4, help="plain sessions (as many slowed ones alternate)")
    args = parser.parse_args(argv)
    if args.action == "measure":
        measure(args.dir, args.runs)
    analyse(args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
