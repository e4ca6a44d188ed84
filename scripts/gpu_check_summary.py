"""Summarise a scripts/gpu_check.sh run: one JSON file and one verdict line.

    python scripts/gpu_check_summary.py OUT --gpu NAME [--profile NAME=EXIT_CODE ...] [--skipped REASON]

Reads OUT/gpu-tests.xml (pytest's JUnit report of the gpu-marked tests) and OUT/<profile>/results.jsonl
for each profile run, and writes OUT/summary.json with
  tests     passed, failed, skipped, and each skip reason
  profiles  per profile: its exit code and each run's status
  memory    per run and phase: torch's reserved peak, torch's reserved at the phase end, NVML's
            figure for this process at the phase end, the CUDA context measured before the
            first phase, and whether NVML agrees with reserved + context (see AGREE_*)
  planner   per run: the planner's predicted train peak against the measured one, error in %
  mfu       per run: MFU against the measured and the datasheet peak, and any flag
The profile named "oom" is the deliberate out-of-memory run: each of its runs must be `oom`.
The last line printed is the verdict, "gpu-check: PASS (...)" or "gpu-check: FAIL (...)"; exit 0
or 1. The profiles' planner errors are reported, not failed on (tiny models, where the caching
allocator's rounding dominates); the planner's band is checked on the 1B shape in
tests/test_gpu.py. An MFU flag (MFU above 100%) fails the check: the count or the peak is wrong.
"""

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

MiB = 2**20
# NVML's process figure minus torch's reserved pool is memory outside torch: the CUDA context,
# plus kernels loaded lazily after it was measured (CUDA_MODULE_LOADING=LAZY). First-contact
# bounds on (NVML - reserved) - context, to be narrowed by the figures this script records.
AGREE_BELOW, AGREE_ABOVE = -64 * MiB, 512 * MiB
PLANNER_WARN_PCT = 25.0


def tests(report: Path) -> dict:
    """Counts from a JUnit XML report; all zero when pytest wrote none."""
    out = {"passed": 0, "failed": 0, "skipped": 0, "skip_reasons": []}
    if not report.is_file():
        out["failed"], out["error"] = 1, f"no test report at {report}"
        return out
    for case in ET.parse(report).getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        if kinds & {"failure", "error"}:
            out["failed"] += 1
        elif "skipped" in kinds:
            out["skipped"] += 1
            reason = case.find("skipped").get("message", "")
            if reason not in out["skip_reasons"]:
                out["skip_reasons"].append(reason)
        else:
            out["passed"] += 1
    return out


def memory_rows(record: dict) -> list:
    """NVML against torch, per phase of one run."""
    memory, rows = record.get("memory") or {}, []
    context = memory.get("cuda_context_bytes")
    for phase in ("load", "train", "eval"):
        figures = memory.get(phase) or {}
        nvml, reserved = figures.get("nvml_process_bytes"), figures.get("reserved_end_bytes")
        row = {"run": record["run_id"], "method": record["method"], "phase": phase,
               "reserved_peak_bytes": figures.get("reserved_peak_bytes"), "reserved_end_bytes": reserved,
               "nvml_process_bytes": nvml, "nvml_used_bytes": figures.get("nvml_used_bytes"),
               "cuda_context_bytes": context, "outside_torch_bytes": None, "agree": None}
        if None not in (nvml, reserved, context):
            row["outside_torch_bytes"] = nvml - reserved
            row["agree"] = AGREE_BELOW <= nvml - reserved - context <= AGREE_ABOVE
        rows.append(row)
    return rows


def planner_row(record: dict) -> dict | None:
    estimate = record.get("estimate") or {}
    if "total_bytes" not in estimate:
        return None
    return {"run": record["run_id"], "model": record["model"], "method": record["method"],
            "predicted_bytes": estimate["total_bytes"], "measured_bytes": estimate.get("measured_bytes"),
            "error_pct": estimate.get("error_pct")}


def summarise(out: Path, *, gpu: str, profiles: dict, skipped: str | None) -> dict:
    summary = {"gpu": gpu or None, "skipped": skipped, "tests": tests(out / "gpu-tests.xml"),
               "profiles": {}, "memory": [], "planner": [], "mfu": []}
    for name, code in profiles.items():
        path = out / name / "results.jsonl"
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
        summary["profiles"][name] = {"exit_code": code,
                                     "runs": [{"method": r["method"], "status": r["status"], "error": r["error"]}
                                              for r in records]}
        for record in records:
            summary["memory"] += memory_rows(record)
            row = planner_row(record)
            if row:
                summary["planner"].append(row)
            throughput = record.get("throughput") or {}
            if throughput.get("mfu") is not None:
                summary["mfu"].append({"run": record["run_id"], "method": record["method"], "mfu": throughput["mfu"],
                                       "mfu_datasheet": throughput.get("mfu_datasheet"),
                                       "flag": throughput.get("mfu_flag")})
    return summary


def verdict(summary: dict) -> tuple:
    """(exit code, one line)."""
    t = summary["tests"]
    problems = [f"{t['failed']} test(s) failed"] if t["failed"] else []
    parts = [f"tests {t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped"]
    for name, profile in summary["profiles"].items():
        expected = "oom" if name == "oom" else "ok"  # the deliberate OOM run must be recorded as oom
        ok = sum(r["status"] == expected for r in profile["runs"])
        parts.append(f"{name} {ok}/{len(profile['runs'])} {expected}")
        failed_as_expected = expected == "oom" and profile["exit_code"] == 1
        if (profile["exit_code"] != 0 and not failed_as_expected) or ok < len(profile["runs"]) or not profile["runs"]:
            problems.append(f"profile {name} (exit {profile['exit_code']}, {ok}/{len(profile['runs'])} {expected})")
    flagged = [r for r in summary.get("mfu", []) if r["flag"]]
    if flagged:
        problems.append(f"MFU flagged in {len(flagged)} run(s): {flagged[0]['flag']}")
    checked = [r for r in summary["memory"] if r["agree"] is not None]
    if summary["profiles"]:
        parts.append(f"NVML = reserved + context in {sum(r['agree'] for r in checked)}/{len(checked)} phases"
                     if checked else "NVML process figure unavailable")
        if any(not r["agree"] for r in checked):
            problems.append("NVML disagrees with torch's reserved + context")
    planned = [r for r in summary["planner"] if r["error_pct"] is not None]
    if planned:
        near = sum(abs(r["error_pct"]) <= PLANNER_WARN_PCT for r in planned)
        parts.append(f"planner within ±{PLANNER_WARN_PCT:g}% for {near}/{len(planned)} runs")
    where = f"GPU {summary['gpu']}" if summary["gpu"] else f"no GPU: {summary['skipped']}"
    text = "; ".join([where] + parts)
    if problems:
        return 1, f"gpu-check: FAIL ({'; '.join(problems)}) ({text})"
    return 0, f"gpu-check: PASS ({text})"


def markdown(summary: dict, *, budgets: dict) -> str:
    """One screen (under 40 lines) for OUT/summary.md, committed as it is: each check ok, fail or
    skip with its reason and key figures, the budget each step had, and the verdict."""
    t = summary["tests"]
    lines = [f"# gpu-check: {summary['gpu'] or 'no GPU'}", "",
             f"budgets (s): {', '.join(f'{k} {v}' for k, v in budgets.items())}; total {sum(budgets.values())}", "",
             "| check | result | figures / reason |", "|---|---|---|"]
    state = "fail" if t["failed"] else ("skip" if not t["passed"] else "ok")
    lines.append(f"| gpu tests | {state} | {t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped |")
    for reason in t["skip_reasons"][:4]:
        lines.append(f"| | skip | {reason[:110]} |")
    if not summary["profiles"]:
        lines.append(f"| profiles | skip | {summary['skipped']} |")
    for name, profile in summary["profiles"].items():
        expected = "oom" if name == "oom" else "ok"
        ok = sum(r["status"] == expected for r in profile["runs"])
        code = profile["exit_code"]
        good = ok == len(profile["runs"]) > 0 and (code == 0 or (expected == "oom" and code == 1))
        why = "timed out at its budget" if code in (124, 137) else f"exit {code}"
        bad = next((f"; {r['method']}: {r['status']} {(r['error'] or '')[:60]}" for r in profile["runs"]
                    if r["status"] != expected), "")
        lines.append(f"| {name} | {'ok' if good else 'fail'} | {ok}/{len(profile['runs'])} {expected}, {why}{bad} |")
    checked = [r for r in summary["memory"] if r["agree"] is not None]
    if summary["profiles"]:
        lines.append(f"| NVML vs reserved + context | {'ok' if all(r['agree'] for r in checked) else 'fail'} | "
                     f"{sum(r['agree'] for r in checked)}/{len(checked)} phases agree |" if checked else
                     "| NVML vs reserved + context | skip | NVML process figure unavailable |")
    planned = [r for r in summary["planner"] if r["error_pct"] is not None]
    if planned:
        worst = max(planned, key=lambda r: abs(r["error_pct"]))
        lines.append(f"| planner (reported) | ok | worst {worst['method']} {worst['error_pct']:+.1f}% "
                     f"of {len(planned)} runs |")
    if summary.get("mfu"):
        top = max(summary["mfu"], key=lambda r: r["mfu"])
        flagged = [r for r in summary["mfu"] if r["flag"]]
        lines.append(f"| MFU | {'fail' if flagged else 'ok'} | max {100 * top['mfu']:.1f}% ({top['method']}); "
                     f"{len(flagged)} flagged |")
    return "\n".join(lines + ["", summary["verdict"], ""])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--gpu", default="")
    parser.add_argument("--profile", action="append", default=[], metavar="NAME=EXIT_CODE")
    parser.add_argument("--skipped", help="why the CUDA parts did not run")
    parser.add_argument("--budget", action="append", default=[], metavar="STEP=SECONDS", help="each step's time limit")
    args = parser.parse_args(argv)
    budgets = {name: int(seconds) for name, seconds in (item.split("=", 1) for item in args.budget)}
    profiles = {name: int(code) for name, code in (item.split("=", 1) for item in args.profile)}
    summary = summarise(args.out, gpu=args.gpu, profiles=profiles, skipped=args.skipped)
    code, line = verdict(summary)
    summary["verdict"] = line
    summary["budgets_s"] = budgets
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    screen = markdown(summary, budgets=budgets)
    (args.out / "summary.md").write_text(screen)
    print(screen, end="")
    print(f"summary: {args.out / 'summary.md'}, {args.out / 'summary.json'}")
    print(line)
    return code


if __name__ == "__main__":
    sys.exit(main())
