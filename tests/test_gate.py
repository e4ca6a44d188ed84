"""Gate verdicts on records mutated from the committed synthetic fixture (no torch, no timing)."""

import json

import pytest

from bench.util.errors import BenchError
from tests.fixtures.make_gate_fixtures import with_
from bench.results.gate import DEFAULT_TOLERANCES, resolve_tolerances
from bench.results.gate.verdicts import (IMPROVED, INCONCLUSIVE, MISSING, PASS, REGRESSION, compare,
                                exit_code)

FIXTURE = "tests/fixtures/results_synthetic.jsonl"
CAL = {"matmul_gflops": 340.0}


def records():
    return [json.loads(line) for line in open(FIXTURE)]


def by_method(method):
    return next(r for r in records() if r["method"] == method)



def verdicts(baseline, candidate, **tol):
    rows = compare(baseline, candidate, tolerances=dict(DEFAULT_TOLERANCES, **tol))
    return {(row.run.split()[1], row.metric): row for row in rows}, rows


def test_same_records_pass_everything():
    table, rows = verdicts(records(), records())
    assert {row.verdict for row in rows} == {PASS}
    assert exit_code(rows) == 0


@pytest.mark.parametrize("metric, value, verdict", [
    ("memory.train.peak_bytes", int(1300000000 * 1.30), REGRESSION),   # +30%
    ("memory.train.peak_bytes", int(1300000000 * 1.04), PASS),         # within +5%
    ("memory.train.peak_bytes", int(1300000000 * 0.70), IMPROVED),
    ("throughput.tokens_per_s", 520.0 / 2, REGRESSION),                # halved
    ("throughput.tokens_per_s", 520.0 * 0.85, PASS),                   # within -20%
    ("params.trainable", 4884480 + 8, REGRESSION),                     # exact
    ("params.trainable", 4884480 - 8, REGRESSION),
    ("params.total", 134515008 * 2, REGRESSION),
])
def test_one_metric_changed(metric, value, verdict):
    base = by_method("lora")
    table, rows = verdicts([base], [with_(base, **{metric: value})])
    assert table[("lora", metric)].verdict == verdict
    others = [row.verdict for row in rows if row.metric != metric]
    assert set(others) == {PASS}
    assert exit_code(rows) == (1 if verdict == REGRESSION else 0)


def test_accuracy_drop_of_ten_points_fails_when_it_beats_the_noise():
    base = with_(by_method("lora"), **{"mmlu.n": 1000, "mmlu.stderr": 0.0146})
    table, _ = verdicts([base], [with_(base, **{"mmlu.acc": base["mmlu"]["acc"] - 0.10})])
    assert table[("lora", "mmlu.acc")].verdict == REGRESSION
    table, _ = verdicts([base], [with_(base, **{"mmlu.acc": base["mmlu"]["acc"] - 0.03})])
    assert table[("lora", "mmlu.acc")].verdict == PASS  # 3 pt < 2 x sqrt(2) x 1.46 pt


def test_accuracy_threshold_is_the_larger_of_one_question_and_the_stderr():
    base = with_(by_method("lora"), **{"mmlu.n": 20, "mmlu.stderr": 0.0})
    table, _ = verdicts([base], [with_(base, **{"mmlu.acc": base["mmlu"]["acc"] - 0.04})])
    assert table[("lora", "mmlu.acc")].verdict == PASS        # less than one question (5 pt)
    table, _ = verdicts([base], [with_(base, **{"mmlu.acc": base["mmlu"]["acc"] - 0.06})])
    assert table[("lora", "mmlu.acc")].verdict == REGRESSION
    # the fixture's 114 questions with stderr 4.3 pt cannot tell a 10-point drop from noise
    small = by_method("lora")
    table, _ = verdicts([small], [with_(small, **{"mmlu.acc": small["mmlu"]["acc"] - 0.10})])
    assert table[("lora", "mmlu.acc")].verdict == PASS


def test_calibration_normalises_a_slower_machine():
    base = with_(by_method("full"), **{"env.calibration": CAL})
    slower = with_(base, **{"env.calibration.matmul_gflops": 170.0, "throughput.tokens_per_s": 150.0})
    row = verdicts([base], [slower])[0][("full", "throughput.tokens_per_s")]
    assert row.verdict == PASS and "normalised" in row.note and row.change == pytest.approx(0.0)
    # the same halving on an equally fast machine is a regression
    same_machine = with_(base, **{"throughput.tokens_per_s": 150.0})
    assert verdicts([base], [same_machine])[0][("full", "throughput.tokens_per_s")].verdict == REGRESSION


def test_missing_calibration_compares_raw_and_says_so():
    base = with_(by_method("full"), **{"env.calibration": CAL})
    cand = with_(by_method("full"), **{"throughput.tokens_per_s": 150.0})
    row = verdicts([base], [cand])[0][("full", "throughput.tokens_per_s")]
    assert row.verdict == REGRESSION and row.note.endswith("raw: no calibration in candidate")


def test_noisy_repeats_are_inconclusive_not_pass_or_fail():
    base = by_method("lora")
    noisy = [with_(base, **{"throughput.tokens_per_s": t}) for t in (300.0, 520.0, 700.0)]
    steady = [with_(base, **{"throughput.tokens_per_s": t}) for t in (515.0, 520.0, 525.0)]
    table, rows = verdicts(steady, noisy)
    assert table[("lora", "throughput.tokens_per_s")].verdict == INCONCLUSIVE
    assert exit_code(rows) == 0 and exit_code(rows, fail_inconclusive=True) == 1
    table, _ = verdicts(steady, noisy, cv_max_pct=50.0)
    assert table[("lora", "throughput.tokens_per_s")].verdict == PASS


def test_beyond_the_factor_but_overlapping_repeats_is_not_a_change():
    base = by_method("lora")
    b = [with_(base, **{"memory.train.peak_bytes": v}) for v in (100, 100, 112)]
    c = [with_(base, **{"memory.train.peak_bytes": v}) for v in (108, 108, 108)]
    table, _ = verdicts(b, c, cv_max_pct=50.0)
    assert table[("lora", "memory.train.peak_bytes")].verdict == PASS  # +8% median, ranges overlap


def test_missing_record_is_named_and_fails_unless_allowed():
    everything = records()
    table, rows = verdicts(everything, everything[:-1])
    row = table[("dora", "record")]
    assert row.verdict == MISSING and row.run == "smollm2-135m dora deadbeef" and "candidate" in row.note
    assert exit_code(rows) == 1 and exit_code(rows, allow_missing=True) == 0
    table, rows = verdicts(everything[1:], everything)
    assert table[("base", "record")].note == "not in baseline" and exit_code(rows) == 1


def test_failed_candidate_where_baseline_is_ok_is_a_named_regression():
    base = by_method("qlora")
    oom = with_(base, status="oom", error="out of memory: tried to allocate 2 GiB")
    table, rows = verdicts([base], [oom])
    row = table[("qlora", "status")]
    assert row.verdict == REGRESSION and "out of memory" in row.note and exit_code(rows) == 1
    table, rows = verdicts([oom], [base])
    assert table[("qlora", "status")].verdict == IMPROVED and exit_code(rows) == 0


def test_spec_hash_decides_the_match_not_the_run_id():
    base = by_method("lora")
    renamed = with_(base, run_id="another-run", **{"config.out_dir": "/elsewhere"})
    other_work = with_(base, spec_hash="ffff0000ffff0000")
    assert exit_code(verdicts([base], [renamed])[1]) == 0
    assert {row.verdict for row in verdicts([base], [other_work])[1]} == {MISSING}


def test_tolerances_from_toml_and_flags(tmp_path):
    path = tmp_path / "profile.toml"
    path.write_text('[run]\nsteps = 4\n\n[gate]\nmemory_pct = 7.5\ncv_max_pct = 15\n')
    tol = resolve_tolerances(file=path, pairs=["memory_pct=9"])
    assert tol == dict(DEFAULT_TOLERANCES, memory_pct=9.0, cv_max_pct=15.0)
    path.write_text("[gate]\nmemroy_pct = 7.5\n")
    with pytest.raises(BenchError, match="unknown gate tolerance.*memroy_pct.*valid choices"):
        resolve_tolerances(file=path)
    with pytest.raises(BenchError, match="KEY=VALUE"):
        resolve_tolerances(pairs=["memory_pct"])
    with pytest.raises(BenchError, match="must be a number >= 0"):
        resolve_tolerances(pairs=["memory_pct=-1"])


def test_defaults_are_a_flat_dict_of_numbers():
    assert all(isinstance(v, float) for v in DEFAULT_TOLERANCES.values())


def test_memory_noise_below_the_absolute_floor_passes_but_a_real_jump_fails():
    base = with_(by_method("lora"), **{"memory.train.peak_bytes": 698 * 2**20})
    noisy = with_(base, **{"memory.train.peak_bytes": 745 * 2**20})    # +6.7%, 47 MiB: seen with no code change
    inflated = with_(base, **{"memory.train.peak_bytes": int(698 * 1.3) * 2**20})
    assert verdicts([base], [noisy])[0][("lora", "memory.train.peak_bytes")].verdict == PASS
    assert verdicts([base], [inflated])[0][("lora", "memory.train.peak_bytes")].verdict == REGRESSION


def test_throughput_is_normalised_by_the_jobs_median_calibration():
    runs = [with_(by_method(m), **{"env.calibration": CAL}) for m in ("full", "lora", "qlora")]
    # one record's own calibration reads low (a noisy matmul), the job's median does not
    odd = [with_(runs[0], **{"env.calibration.matmul_gflops": 200.0})] + runs[1:]
    rows = verdicts(runs, odd)[0]
    assert rows[("full", "throughput.tokens_per_s")].verdict == PASS
    assert "340.0 -> 340.0" in rows[("full", "throughput.tokens_per_s")].note


CUDA_CAL = {"matmul_gflops": 650000.0, "matmul_n": 1024, "reps": 11, "dtype": "bfloat16", "device": "cuda"}


def test_a_cpu_calibration_is_never_applied_to_a_cuda_record():
    cpu = with_(by_method("full"), **{"env.calibration": CAL})   # an old record: no device, cpu/float32 by definition
    cuda = with_(cpu, **{"env.calibration": CUDA_CAL, "throughput.tokens_per_s": 520.0 * 40})
    for base, cand in ((cpu, cuda), (cuda, cpu)):
        row = verdicts([base], [cand])[0][("full", "throughput.tokens_per_s")]
        assert "normalised" not in row.note and "raw: calibrations differ" in row.note
        assert row.change == pytest.approx(cand["throughput"]["tokens_per_s"] / base["throughput"]["tokens_per_s"] - 1)
    row = verdicts([cpu], [cuda])[0][("full", "throughput.tokens_per_s")]
    assert row.note.endswith("raw: calibrations differ: baseline cpu/float32, candidate cuda/bfloat16")


def test_cuda_records_are_normalised_by_cuda_calibrations_of_the_same_dtype():
    base = with_(by_method("full"), **{"env.calibration": CUDA_CAL, "throughput.tokens_per_s": 20000.0})
    slower_gpu = with_(base, **{"env.calibration.matmul_gflops": 325000.0, "throughput.tokens_per_s": 10000.0})
    row = verdicts([base], [slower_gpu])[0][("full", "throughput.tokens_per_s")]
    assert row.verdict == PASS and "normalised by matmul 650000.0 -> 325000.0" in row.note
    fp32 = with_(slower_gpu, **{"env.calibration.dtype": "float32"})   # a float32 matmul says nothing of bf16
    row = verdicts([base], [fp32])[0][("full", "throughput.tokens_per_s")]
    assert row.verdict == REGRESSION and "raw: calibrations differ" in row.note


def test_a_job_mixing_devices_normalises_each_run_by_its_own_kind():
    cpu_runs = [with_(by_method(m), **{"env.calibration": CAL}) for m in ("lora", "qlora")]
    cuda_full = with_(by_method("full"), **{"env.calibration": CUDA_CAL, "throughput.tokens_per_s": 20000.0})
    slower = with_(cuda_full, **{"env.calibration.matmul_gflops": 325000.0, "throughput.tokens_per_s": 10000.0})
    rows = verdicts(cpu_runs + [cuda_full], cpu_runs + [slower])[0]
    assert "650000.0 -> 325000.0" in rows[("full", "throughput.tokens_per_s")].note
    assert "340.0 -> 340.0" in rows[("lora", "throughput.tokens_per_s")].note


def test_calibration_kind_and_comparable():
    from bench.measure.matmul import calibration_kind, comparable

    old, cuda = {"env": {"calibration": CAL}}, {"env": {"calibration": CUDA_CAL}}
    assert calibration_kind(old) == "cpu/float32" and calibration_kind(cuda) == "cuda/bfloat16"
    assert (calibration_kind({"env": {}}) is None
            and calibration_kind({"env": {"calibration": {"matmul_gflops": 0}}}) is None)
    assert comparable([old], [old]) is None and comparable([cuda], [cuda, cuda]) is None
    assert comparable([old], [cuda]) == "calibrations differ: baseline cpu/float32, candidate cuda/bfloat16"
    assert comparable([old, cuda], [old, cuda]).startswith("calibrations differ")
    assert comparable([{"env": {}}], [old]) == "no calibration in baseline"


def test_train_peak_is_compared_above_the_interpreter_baseline():
    """A fresh .venv imported the same packages at 509 MiB against 445 MiB (file-backed library pages):
    a peak that rose with its baseline is the machine, not the code; a rise above it is a regression."""
    base = by_method("lora")
    peak, floor = base["memory"]["train"]["peak_bytes"], base["memory"]["baseline_bytes"]
    same_run = with_(base, **{"memory.baseline_bytes": floor + 64 * 2**20,
                              "memory.train.peak_bytes": peak + 64 * 2**20})
    table, _ = verdicts([base], [same_run])
    assert table[("lora", "memory.train.peak_bytes")].verdict == PASS
    assert "above the interpreter baseline" in table[("lora", "memory.train.peak_bytes")].note
    grew = with_(base, **{"memory.train.peak_bytes": int(floor + (peak - floor) * 1.3) + 65 * 2**20})
    table, _ = verdicts([base], [grew])
    assert table[("lora", "memory.train.peak_bytes")].verdict == REGRESSION


@pytest.mark.parametrize("path, a, b, reason", [
    ("precision.policy", "fp32", "bf16-true", "precision policy differs: fp32 vs bf16-true"),
    ("memory.device", "cpu", "cuda:0", "device differs: cpu vs cuda"),
    ("data.fingerprint", "a" * 64, "b" * 64, "data fingerprint differs: aaaaaaaaaaaa vs bbbbbbbbbbbb"),
])
def test_what_ran_must_match_or_the_run_is_inconclusive(path, a, b, reason):
    """The spec said `auto` on both sides (same spec_hash), but what ran differs: named, not scored.
    The candidate's train peak is 36.7% lower, which would otherwise read as 'improved'."""
    base = with_(by_method("full"), **{path: a})
    cand = with_(by_method("full"), **{path: b, "memory.train.peak_bytes":
                                       int(by_method("full")["memory"]["train"]["peak_bytes"] * 0.633)})
    table, rows = verdicts([base], [cand])
    assert [(row.metric, row.verdict) for row in rows] == [("pairing", INCONCLUSIVE)]
    assert rows[0].note == f"{reason}; not scored"
    assert exit_code(rows) == 0 and exit_code(rows, fail_inconclusive=True) == 1
    same, _ = verdicts([base], [with_(cand, **{path: a})])
    assert same[("full", "memory.train.peak_bytes")].verdict == IMPROVED  # matched: judged as before
