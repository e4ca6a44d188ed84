"""How a regression is decided: match runs across two sides, then compare each metric.

Matching: records pair by (model identity, method, spec_hash). The identity is canonical
(bench.models.identity: `./m` and `/abs/m` are one model, a hub model is `org/name@revision`), and
spec_hash leaves out the fields that don't change the work (schema.NON_WORK_FIELDS), so equal
keys mean the same work asked for; several records with one key are repeats. What *ran* must match too: a run whose
resolved precision policy, device kind or data fingerprint differs between the two sides (a
spec saying `auto` resolves to fp32 on one machine and bf16-true on another) gets one
`inconclusive` row naming the difference, and none of its figures is judged. Comparing: asv-style,
a repeat-based figure counts as
changed only if it is beyond its factor *and* significant (with repeats on both sides, their
ranges must not overlap); repeats noisier than `cv_max_pct` make it inconclusive instead, and so
does, for throughput, a run that either side recorded as contended (bench.results.gate.contention).
Memory compares like with like: a CPU peak above the record's interpreter baseline (both host
RSS), a CUDA peak as the device bytes it is (the baseline is host RSS and is never subtracted).
Pure functions from records to verdict rows: nothing here prints (bench.results.gate.command does).
"""

import math
import statistics
from collections import Counter
from dataclasses import dataclass

from bench.measure.matmul import calibration_kind, comparable
from bench.models.identity import model_identity, work_hash
from bench.results.compare.runs import device_of, ran_mismatch
from bench.results.gate.contention import why_contended
from bench.results.schema import problems
from bench.util.errors import BenchError
from bench.util.units import mib

PASS, IMPROVED, REGRESSION, INCONCLUSIVE, MISSING = "pass", "improved", "regression", "inconclusive", "missing"
VERDICTS = (PASS, IMPROVED, REGRESSION, INCONCLUSIVE, MISSING)

# The direction of each metric is data; "exact" means any change is a regression.
METRICS = {
    "params.trainable": "exact",
    "params.total": "exact",
    "memory.train.peak_bytes": "lower",
    "throughput.tokens_per_s": "higher",
    "mmlu.acc": "higher",
}
CALIBRATION = "env.calibration.matmul_gflops"
CONTENDED = "contended"  # how an inconclusive throughput row's note starts when the machine was busy


def key_of(record: dict) -> tuple:
    """(model identity, method, spec_hash as if the model were typed canonically)."""
    return (model_identity(record), record["method"], work_hash(record))


def run_name(key: tuple) -> str:
    """How a run is named in the table: model, method and the first 8 hex of spec_hash."""
    model, method, spec_hash = key
    return f"{model} {method} {spec_hash[:8]}"


def group(records: list) -> dict:
    """key -> [records], in the order keys first appear."""
    groups = {}
    for record in records:
        groups.setdefault(key_of(record), []).append(record)
    return groups


def pair(baseline: list, candidate: list) -> list:
    """[(key, baseline_records, candidate_records)]: baseline order, then candidate-only keys;
    a side with no record for a key gets an empty list."""
    base, cand = group(baseline), group(candidate)
    keys = list(base) + [key for key in cand if key not in base]
    return [(key, base.get(key, []), cand.get(key, [])) for key in keys]


@dataclass(frozen=True)
class Row:
    """One verdict. baseline/candidate are medians (or statuses). change is relative
    (candidate / baseline - 1), except for exact metrics and mmlu.acc, where it is the
    absolute difference (a count, or accuracy on 0-1)."""
    run: str
    metric: str
    baseline: object
    candidate: object
    change: object
    verdict: str
    note: str = ""


def get(record: dict, dotted: str):
    """record['a']['b']['c'] for 'a.b.c', or None where any step is missing."""
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _cv_pct(values):
    if len(values) < 2 or not statistics.mean(values):
        return 0.0
    return 100 * statistics.stdev(values) / abs(statistics.mean(values))


def _relative(run, metric, base, cand, *, limit_pct, direction, tol, scale=(1.0, 1.0), note="", min_abs=0.0):
    """Medians compared by a relative factor; direction 'lower' or 'higher' is better."""
    b = [v / scale[0] for v in base]
    c = [v / scale[1] for v in cand]
    bm, cm = statistics.median(b), statistics.median(c)
    change = cm / bm - 1 if bm else math.inf
    shown = (statistics.median(base), statistics.median(cand))
    noisiest = max(_cv_pct(base), _cv_pct(cand))
    if noisiest > tol["cv_max_pct"]:
        note = f"repeats vary {noisiest:.1f}% (CV) > {tol['cv_max_pct']:g}%" + (f"; {note}" if note else "")
        return Row(run, metric, *shown, change, INCONCLUSIVE, note)
    big = abs(cm - bm) * scale[1] > min_abs  # beyond the absolute noise floor too (in raw units)
    worse = big and (change > limit_pct / 100 if direction == "lower" else change < -limit_pct / 100)
    better = big and (change < -limit_pct / 100 if direction == "lower" else change > limit_pct / 100)
    apart = len(b) < 2 or len(c) < 2 or min(c) > max(b) or max(c) < min(b)
    verdict = REGRESSION if worse and apart else IMPROVED if better and apart else PASS
    sign = "+" if direction == "lower" else "-"
    limit = f"limit {sign}{limit_pct:g}%" + (f" and {mib(min_abs):g} MiB" if min_abs else "")
    if len(base) > 1 or len(cand) > 1:
        limit += f", median of {len(base)}/{len(cand)}"
    return Row(run, metric, *shown, change, verdict, f"{limit}; {note}" if note else limit)


def job_calibration(records: list, kind: str | None = None):
    """The median calibration over every record of one side (one job), or over those of one
    calibration `kind` ("cuda/bfloat16"): a single matmul figure per record varied 196-307
    GFLOP/s here within minutes, so per-run scaling added noise."""
    figures = [get(r, CALIBRATION) for r in records if kind is None or calibration_kind(r) == kind]
    ok = [f for f in figures if isinstance(f, (int, float)) and f > 0]
    return statistics.median(ok) if ok and len(ok) == len(figures) else None


def _throughput(run, metric, base, cand, tol, runs, jobs):
    """Throughput normalised by the job's calibration of the run's own kind; raw, with the reason
    in the note, when the two sides' calibrations cannot be compared (bench.measure.matmul).
    Inconclusive when a record on either side was contended: a busy machine slows the steps."""
    contended = [f"{side} {why}" for side, records in zip(("baseline", "candidate"), runs)
                 for why in [why_contended(records, tol)] if why]
    if contended:
        change = statistics.median(cand) / statistics.median(base) - 1 if statistics.median(base) else math.inf
        return Row(run, metric, statistics.median(base), statistics.median(cand), change, INCONCLUSIVE,
                   f"{CONTENDED}: {'; '.join(contended)}")
    why = comparable(*runs)
    kind = None if why else calibration_kind(runs[0][0])
    cal = (None, None) if why else tuple(job_calibration(job, kind) for job in jobs)
    if why or None in cal:
        note = f"raw: {why or 'no calibration of kind ' + kind + ' in the job'}"
        return _relative(run, metric, base, cand, limit_pct=tol["throughput_pct"], direction="higher",
                         tol=tol, note=note)
    note = f"normalised by matmul {cal[0]:.1f} -> {cal[1]:.1f} GFLOP/s"
    return _relative(run, metric, base, cand, limit_pct=tol["throughput_pct"], direction="higher",
                     tol=tol, scale=tuple(cal), note=note)


def _mean_known(values):
    known = [v for v in values if v is not None]
    return statistics.mean(known) if known else 0.0


def _accuracy(run, metric, base_recs, cand_recs, base, cand, tol):
    """A drop counts when it exceeds both one question (1/n) and k x the combined stderr."""
    bm, cm = statistics.mean(base), statistics.mean(cand)
    counts = [get(r, "mmlu.n") for r in base_recs + cand_recs if get(r, "mmlu.n")]
    one_question = tol["accuracy_min_questions"] / min(counts) if counts else 0.0
    se_b = _mean_known(get(r, "mmlu.stderr") for r in base_recs)
    se_c = _mean_known(get(r, "mmlu.stderr") for r in cand_recs)
    threshold = max(one_question, tol["accuracy_stderr_k"] * math.hypot(se_b, se_c))
    drop = bm - cm
    verdict = REGRESSION if drop > threshold else IMPROVED if -drop > threshold else PASS
    note = f"limit -{100 * threshold:.1f} pt"
    return Row(run, metric, bm, cm, cm - bm, verdict, note)


def _exact(run, metric, base, cand):
    bv, cv = sorted(set(base)), sorted(set(cand))
    change = cv[0] - bv[0]
    verdict = PASS if bv == cv else REGRESSION
    return Row(run, metric, bv[0], cv[0], change, verdict, "must match exactly" if verdict != PASS else "")


def _status(records):
    bad = [r for r in records if r["status"] != "ok"]
    return ("ok", "") if not bad else (bad[0]["status"], f"{len(bad)} of {len(records)} not ok: {bad[0]['error']}")


def compare_run(run, base_recs, cand_recs, tol, jobs=None) -> list:
    """Rows for one matched run: its status (when either side is not ok), then each metric."""
    (b_status, b_why), (c_status, c_why) = _status(base_recs), _status(cand_recs)
    rows = []
    if b_status == "ok" and c_status != "ok":
        rows.append(Row(run, "status", b_status, c_status, None, REGRESSION, c_why))
    elif b_status != "ok":
        verdict = IMPROVED if c_status == "ok" else PASS
        note = "not ok on both sides" if c_status != "ok" else f"baseline: {b_why}"
        rows.append(Row(run, "status", b_status, c_status, None, verdict, note))
    base_ok = [r for r in base_recs if r["status"] == "ok"]
    cand_ok = [r for r in cand_recs if r["status"] == "ok"]
    if not base_ok or not cand_ok:
        return rows
    for metric, direction in METRICS.items():
        base = [v for v in (get(r, metric) for r in base_ok) if v is not None]
        cand = [v for v in (get(r, metric) for r in cand_ok) if v is not None]
        if not base and not cand:
            continue
        if not cand or not base:
            verdict, where = (REGRESSION, "candidate") if not cand else (PASS, "baseline")
            rows.append(Row(run, metric, base and base[0], cand and cand[0], None, verdict, f"no value in {where}"))
        elif direction == "exact":
            rows.append(_exact(run, metric, base, cand))
        elif metric == "throughput.tokens_per_s":
            rows.append(_throughput(run, metric, base, cand, tol, (base_ok, cand_ok), jobs or (base_ok, cand_ok)))
        elif metric == "mmlu.acc":
            rows.append(_accuracy(run, metric, base_ok, cand_ok, base, cand, tol))
        else:
            base, cand, note = _above_baseline(base_ok, cand_ok, base, cand)
            rows.append(_relative(run, metric, base, cand, limit_pct=tol["memory_pct"], direction=direction, tol=tol,
                                  note=note, min_abs=tol["memory_min_mib"] * 2**20))
    return rows


def _above_baseline(base_ok, cand_ok, base, cand):
    """A CPU peak minus the record's interpreter-and-imports baseline, when every record is a CPU run
    with one: the memory the run itself added. The baseline moves with the machine, not the code: the
    same packages imported from a freshly installed .venv measured 509 MiB against 445 MiB from an
    older one (libtorch_cpu.so resident at 99 against 49 MiB, page-cache state), which moved every
    smoke train peak by ~64 MiB. A CUDA peak is device bytes and the baseline host RSS: subtracting
    one from the other would mix two memories, so a CUDA peak is compared as it is."""
    if any(device_of(r) != "cpu" for r in base_ok + cand_ok):
        devices = sorted({str(device_of(r)) for r in base_ok + cand_ok})
        return base, cand, f"{'/'.join(devices)} device peak (reserved), not above the host baseline"
    b0 = [get(r, "memory.baseline_bytes") for r in base_ok]
    c0 = [get(r, "memory.baseline_bytes") for r in cand_ok]
    if None in b0 or None in c0 or len(b0) != len(base) or len(c0) != len(cand):
        return base, cand, ""
    note = (f"above the interpreter baseline ({mib(statistics.median(b0)):,.0f} -> "
            f"{mib(statistics.median(c0)):,.0f} MiB)")
    return [v - z for v, z in zip(base, b0)], [v - z for v, z in zip(cand, c0)], note


def nothing_shared(baseline: list, candidate: list) -> str | None:
    """Why the two sides cannot be compared at all (no run on both), or None: a gate that compared
    nothing has checked nothing, so it must not pass."""
    matched = pair(baseline, candidate)
    if any(b and c for _, b, c in matched):
        return None
    first = {side: next((run_name(k) for k, b, c in matched if (b if side == "baseline" else c)), "-")
             for side in ("baseline", "candidate")}
    counts = [len({k for k, b, c in matched if (b, c)[i]}) for i in (0, 1)]
    return (f"compared nothing: baseline and candidate share no run (matched by model identity, method and "
            f"spec hash): baseline has {counts[0]} (e.g. {first['baseline']}), candidate {counts[1]} "
            f"(e.g. {first['candidate']}); gate results of the same profile and settings")


def compare(baseline: list, candidate: list, *, tolerances: dict) -> list:
    """Verdict rows for every run in either file; a run on one side only is MISSING."""
    rows = []
    for key, base_recs, cand_recs in pair(baseline, candidate):
        run = run_name(key)
        if not base_recs or not cand_recs:
            where = "candidate" if not cand_recs else "baseline"
            shown = ("-", f"{len(cand_recs)} record(s)") if not base_recs else (f"{len(base_recs)} record(s)", "-")
            rows.append(Row(run, "record", *shown, None, MISSING, f"not in {where}"))
            continue
        why = ran_mismatch([r for r in base_recs if r["status"] == "ok"], [r for r in cand_recs if r["status"] == "ok"])
        if why:
            rows.append(Row(run, "pairing", "-", "-", None, INCONCLUSIVE, f"{why}; not scored"))
            continue
        rows.extend(compare_run(run, base_recs, cand_recs, tolerances, (baseline, candidate)))
    return rows


def exit_code(rows: list, *, allow_missing: bool = False, fail_inconclusive: bool = False) -> int:
    """0 pass, 1 regression (or missing without allow_missing, inconclusive if asked)."""
    failing = {REGRESSION}
    if not allow_missing:
        failing.add(MISSING)
    if fail_inconclusive:
        failing.add(INCONCLUSIVE)
    return 1 if any(row.verdict in failing for row in rows) else 0


def check_records(records: list, *, side: str) -> None:
    """Refuse records the gate cannot match or read, naming the first bad one."""
    for number, record in enumerate(records, start=1):
        found = problems(record)
        if found:
            name = record.get("run_id") or f"record {number}"
            raise BenchError(f"{side}: {name}: {found[0]}")


def summary(rows: list, *, exit_code: int) -> str:
    """One final line: PASS or FAIL, then the count of each verdict that is not a plain pass."""
    counts = Counter(row.verdict for row in rows)
    runs = len({row.run for row in rows})
    parts = [f"{counts[v]} {v}" for v in (REGRESSION, MISSING, INCONCLUSIVE, IMPROVED) if counts[v]]
    contended = sum(row.verdict == INCONCLUSIVE and row.note.startswith(CONTENDED) for row in rows)
    if contended:
        parts.append(f"throughput of {contended} run{'s' * (contended > 1)} not judged: machine contended")
    detail = ", ".join(parts) if parts else "all within tolerance"
    return f"gate: {'FAIL' if exit_code else 'PASS'} ({len(rows)} checks on {runs} runs: {detail})"


def describe_env(records: list) -> str:
    """Where a side's records came from: git, torch, CPU/GPU, threads and calibration."""
    env = records[0].get("env")
    env = env if isinstance(env, dict) else {}
    shas = {(get(r, "env.git_sha") or "?")[:8] + ("+dirty" if get(r, "env.git_dirty") else "") for r in records}
    torch = (env.get("packages") or {}).get("torch", "?")
    device = env.get("device_name") or "?"
    cpu = env.get("cpu_model") or "?"
    figures = [get(r, CALIBRATION) for r in records]
    known = [f for f in figures if isinstance(f, (int, float))]
    cal = f"{statistics.median(known):.1f} GFLOP/s" if known else "none"
    if known and len(known) < len(figures):
        cal += f" ({len(figures) - len(known)} records without)"
    return (f"{len(records)} records, git {','.join(sorted(shas))}, torch {torch}, device {device}, "
            f"cpu {cpu} x{env.get('threads', '?')} threads, calibration {cal}")
