#!/usr/bin/env python3
"""Micro-benchmark thresholds from measured noise, and the check scripts/micro_bench.sh runs.

    PYTHONPATH=. python scripts/micro_noise.py measure DIR [--runs 4]   # alternate plain and slowed sessions
    PYTHONPATH=. python scripts/micro_noise.py analyse DIR [--write profiles/baselines/micro/thresholds.json]
    PYTHONPATH=. python scripts/micro_noise.py check BASELINE.json NEW.json THRESHOLDS.json

`measure` runs the micro-benchmarks (micro_bench.sh's pytest-benchmark flags) 2 x RUNS times,
alternating a plain session and one with FTBENCH_MICRO_SLOWDOWN=1.25 (every timed call made 25%
slower), so machine load falls on both alike; each session's JSON goes to DIR.
`analyse` compares sessions as the check does, on each benchmark's `min` divided by the same session's
`min` of the reference benchmark (REF, a plain matmul): a machine that is slower or busier throughout
moves both and cancels, so a baseline stays meaningful on another machine of the same CPU model:
  - noise: a benchmark's ratio new/old over every ordered pair of plain sessions;
  - its threshold: the largest plain ratio seen, plus MARGIN_PCT, at least FLOOR_PCT, so that none of
    the measured plain pairs would have alarmed (rounded up to 5%);
  - false alarm: a plain pair where some benchmark exceeds its threshold. In sample that is 0 by
    construction, so it is measured out of sample: leave one plain session out, set the thresholds
    from the others, and gate every pair that involves the one left out;
  - missed regression: a slowed session against a plain one where a benchmark stays within its threshold
    (per check), or where every benchmark does (per pair: the suite missed the slowdown).
`check` is the gate: exit 1 naming each benchmark slower than its threshold, else 0; 2 on bad input;
3 when the baseline was measured on another CPU (absolute times do not compare across CPUs).
"""

import argparse
import json
import math
import os
import subprocess
import sys
from itertools import permutations
from pathlib import Path

FLAGS = ["--benchmark-enable", "--benchmark-only", "--benchmark-warmup=on", "--benchmark-min-rounds=15",
         "--benchmark-max-time=2"]
SLOWDOWN = 1.25
MARGIN_PCT, FLOOR_PCT = 5.0, 10.0
# A benchmark whose noise needs a threshold above this cannot see the 25% slowdown the gate is for:
# it is timed and shown, not gated (its threshold is null), so its noise cannot fail a build.
# Gating such benchmarks at their noise level raised false alarms out of sample (docs/gate.md).
CAP_PCT = 25.0
GLOBAL = (10, 25, 50, 100, 200, 400)
# The reference every benchmark is divided by (see normalised); itself shown, not gated.
REF = "test_calibration_matmul"


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
    return {b["name"]: b["stats"]["min"] for b in json.loads(Path(path).read_text())["benchmarks"]}


def normalised(times: dict, *, slowed: bool = False) -> dict:
    """Each benchmark's min over the same session's reference (REF, a plain fp32 matmul): a ratio measured in
    one run, so a slower or busier machine moves both alike and cancels. A slowed session slowed REF too; its
    busy wait scales each call exactly, so REF is divided back by SLOWDOWN."""
    ref = times[REF] / (SLOWDOWN if slowed else 1.0)
    return {k: v / ref for k, v in times.items() if k != REF}


def slower(base: dict, new: dict, thresholds: dict) -> list:
    """[(name, change %, limit %)] for each benchmark slower than its threshold (normalised min vs min)."""
    out = []
    for name in sorted(set(base) & set(new)):
        limit = thresholds.get(name)
        if limit is None:  # too noisy to gate, or never measured: shown, not checked
            continue
        change = 100 * (new[name] / base[name] - 1)
        if change > limit:
            out.append((name, change, limit))
    return out


def thresholds_from(plain: list) -> dict:
    """Per benchmark: the largest plain ratio seen + MARGIN_PCT, at least FLOOR_PCT, rounded up to 5%;
    None (not gated) above CAP_PCT. A benchmark added later has none: not gated until measured."""
    worst = {k: max(b[k] / a[k] for a, b in permutations(plain, 2)) for k in plain[0]}
    limits = {k: max(FLOOR_PCT, 5 * math.ceil(round(100 * (r - 1) + MARGIN_PCT, 6) / 5))
              for k, r in sorted(worst.items())}
    return {k: (v if v <= CAP_PCT else None) for k, v in limits.items()}


def rates(plain: list, slow: list, thresholds: dict) -> dict:
    pairs = list(permutations(plain, 2))
    alarms = sum(bool(slower(a, b, thresholds)) for a, b in pairs)
    slow_pairs = [(a, s) for a in plain for s in slow]
    missed_pairs = sum(not slower(a, s, thresholds) for a, s in slow_pairs)
    caught = {k: sum(bool(slower(a, s, {k: t})) for a, s in slow_pairs) for k, t in thresholds.items()}
    return {"false_alarms": (alarms, len(pairs)), "missed_pairs": (missed_pairs, len(slow_pairs)),
            "missed": {k: (len(slow_pairs) - c, len(slow_pairs)) for k, c in caught.items()}}


def loo_false_alarms(plain: list) -> tuple:
    """(alarms, pairs): thresholds from all sessions but one, gating the pairs that involve that one."""
    if len(plain) < 3:
        return 0, 0
    alarms = pairs = 0
    for i, held in enumerate(plain):
        rest = plain[:i] + plain[i + 1:]
        limits = thresholds_from(rest)
        for other in rest:
            alarms += bool(slower(other, held, limits)) + bool(slower(held, other, limits))
            pairs += 2
    return alarms, pairs


def analyse(out: Path, write=None) -> None:
    plain = [normalised(mins(p)) for p in sorted(out.glob("plain-*.json"))]
    slow = [normalised(mins(p), slowed=True) for p in sorted(out.glob("slow-*.json"))]
    if len(plain) < 2 or not slow:
        sys.exit(f"need at least 2 plain and 1 slowed session in {out}")
    limits = thresholds_from(plain)
    r = rates(plain, slow, limits)
    print(f"{len(plain)} plain and {len(slow)} slowed ({SLOWDOWN}x) sessions; min ratio new/old per benchmark")
    print(f"  {'benchmark':40s} {'plain pairs':>15s} {'slowed vs plain':>17s} {'threshold':>10s} {'missed 25%':>11s}")
    for name in r["missed"]:
        ratios = [b[name] / a[name] for a, b in permutations(plain, 2)]
        slowed = [s[name] / a[name] for a in plain for s in slow]
        m = r["missed"][name]
        limit = "not gated" if limits[name] is None else f"+{limits[name]:g}%"
        print(f"  {name:40s} {min(ratios):6.3f} .. {max(ratios):5.3f} {min(slowed):7.3f} .. {max(slowed):5.3f} "
              f"{limit:>10s} {m[0]:>4} of {m[1]}")
    fa, mp = loo_false_alarms(plain), r["missed_pairs"]
    checks = sum(v[0] for v in r["missed"].values()), sum(v[1] for v in r["missed"].values())
    print(f"per-benchmark thresholds: false alarms {fa[0]} of {fa[1]} plain pairs (leave one session out); "
          f"missed the 25% slowdown in {checks[0]} of {checks[1]} benchmark checks; the suite (any benchmark) "
          f"missed it in {mp[0]} of {mp[1]} pairs")
    for pct in GLOBAL:
        g = rates(plain, slow, {k: pct for k in r["missed"]})
        checks = sum(v[0] for v in g["missed"].values()), sum(v[1] for v in g["missed"].values())
        print(f"one threshold min:{pct}%: false alarms {g['false_alarms'][0]} of {g['false_alarms'][1]}, "
              f"missed {checks[0]} of {checks[1]} checks, "
              f"suite missed {g['missed_pairs'][0]} of {g['missed_pairs'][1]}")
    if write:
        Path(write).write_text(json.dumps(limits, indent=1, sort_keys=True) + "\n")
        print(f"wrote {write}")


def cpu(path: Path) -> str:
    """The CPU a pytest-benchmark file was measured on (its machine_info)."""
    return (json.loads(Path(path).read_text()).get("machine_info", {}).get("cpu") or {}).get("brand_raw") or "?"


def check(base: Path, new: Path, thresholds: Path) -> int:
    """0 within every gated threshold, 1 some benchmark slower, 2 bad input, 3 baseline from another CPU."""
    try:
        limits = json.loads(Path(thresholds).read_text())
        if cpu(base) != cpu(new):  # absolute times from another CPU say nothing at 10%
            print(f"baseline measured on {cpu(base)}, this machine is {cpu(new)}")
            return 3
        before, after = mins(base), mins(new)
        old, now = normalised(before), normalised(after)
        found = slower(old, now, limits)
    except (OSError, ValueError, KeyError) as exc:
        print(f"micro-benchmarks: FAIL: cannot compare ({exc.__class__.__name__}: {exc})")
        return 2
    machine = 100 * (after[REF] / before[REF] - 1)
    print(f"this session's reference ({REF}) {machine:+.1f}% against the baseline's; each benchmark is compared "
          f"as its min over that reference")
    for name, change, limit in found:
        print(f"{name}: min/reference {change:+.1f}% (limit +{limit:g}%)")
    shown = sorted(k for k in set(old) & set(now) if limits.get(k) is None)
    if shown:
        print(f"not gated (noise above +{CAP_PCT:g}% when measured, or never measured): {', '.join(shown)}",
              file=sys.stderr)
    return 1 if found else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("measure", "analyse", "check"))
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=4, help="plain sessions (as many slowed ones alternate)")
    parser.add_argument("--write", type=Path, help="analyse: write the per-benchmark thresholds here")
    args = parser.parse_args(argv)
    if args.action == "check":
        return check(*args.paths[:3])
    if args.action == "measure":
        measure(args.paths[0], args.runs)
    analyse(args.paths[0], write=args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
