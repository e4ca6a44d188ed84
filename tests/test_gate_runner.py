"""The gate on a real user's records: CUDA memory compared as device bytes, contended runs' throughput
inconclusive, runs keyed by a canonical model identity, and a gate that compared nothing failing.
Records are mutated from the committed synthetic fixture (no torch, no timing)."""

import json

import pytest

from bench import cli
from bench.models.identity import model_identity, work_hash
from bench.results.gate import DEFAULT_TOLERANCES
from bench.results.gate.verdicts import summary
from bench.results.gate.verdicts import INCONCLUSIVE, PASS, REGRESSION, compare, exit_code, key_of
from bench.run.matrix import finish_spec
from tests.fixtures.make_gate_fixtures import with_

FIXTURE = "tests/fixtures/results_synthetic.jsonl"
MiB, GiB = 2**20, 2**30


def by_method(method):
    return next(json.loads(line) for line in open(FIXTURE) if json.loads(line)["method"] == method)


def verdicts(baseline, candidate, **tol):
    rows = compare(baseline, candidate, tolerances=dict(DEFAULT_TOLERANCES, **tol))
    return {(row.run.split()[1], row.metric): row for row in rows}, rows


# --- memory: like with like ----------------------------------------------------------------------

def cuda_record(*, peak_mib, host_gib):
    """A CUDA-shaped record: phase peaks are device bytes (torch reserved), the baseline host RSS."""
    return with_(by_method("lora"), **{"memory.device": "cuda", "config.device": "cuda",
                                       "memory.train.peak_bytes": int(peak_mib * MiB),
                                       "memory.baseline_bytes": int(host_gib * GiB)})


def test_a_doubled_cuda_device_peak_is_a_regression_whatever_the_host_rss_did():
    """Device peak 200 -> 400 MiB while host RSS went 2.00 -> 2.06 GiB: the old gate subtracted the
    host RSS from the device peak and called it '-7.5%, improved'."""
    table, rows = verdicts([cuda_record(peak_mib=200, host_gib=2.00)], [cuda_record(peak_mib=400, host_gib=2.06)])
    row = table[("lora", "memory.train.peak_bytes")]
    assert row.verdict == REGRESSION and row.change == pytest.approx(1.0)
    assert (row.baseline, row.candidate) == (200 * MiB, 400 * MiB)
    assert "device peak" in row.note and "interpreter baseline" not in row.note
    assert exit_code(rows) == 1


def test_a_cuda_peak_that_only_moved_with_the_host_passes():
    table, _ = verdicts([cuda_record(peak_mib=4000, host_gib=2.0)], [cuda_record(peak_mib=4010, host_gib=3.0)])
    assert table[("lora", "memory.train.peak_bytes")].verdict == PASS


def test_cpu_peaks_are_still_compared_above_the_interpreter_baseline():
    base = by_method("lora")
    row = verdicts([base], [base])[0][("lora", "memory.train.peak_bytes")]
    assert row.verdict == PASS and "above the interpreter baseline" in row.note


# --- contention ----------------------------------------------------------------------------------

QUIET = {"cores": 2, "machine_cores": 2, "load_avg_start": 0.7, "load_avg_end": 1.9,
         "others_busy_cores": 0.05, "steal_pct": 0.0, "wall_s": 12.0}


def timed(record, *, tokens_per_s, contention=QUIET, spread=3.0):
    return with_(record, **{"throughput.tokens_per_s": tokens_per_s, "contention": contention,
                            "env.calibration": {"matmul_gflops": 340.0, "spread_pct": spread}})


@pytest.mark.parametrize("busy, words", [
    ({"contention": dict(QUIET, others_busy_cores=1.5)}, "other processes kept 1.5 of 2 cores busy"),
    ({"contention": dict(QUIET, steal_pct=12.0)}, "steal time 12.0%"),
    ({"spread": 48.0}, "calibration repeats spread 48%"),
    ({"contention": dict(QUIET, others_busy_cores=None, steal_pct=None, load_avg_end=4.1)},
     "load average 4.1 on 2 cores"),
])
def test_a_contended_side_makes_throughput_inconclusive_and_leaves_the_rest_judged(busy, words):
    base = timed(by_method("lora"), tokens_per_s=520.0)
    # the candidate is 35% slower, as the same spec was on a busy 2-core runner, and its memory grew 30%
    slow = timed(with_(base, **{"memory.train.peak_bytes": int(base["memory"]["train"]["peak_bytes"] * 1.3)}),
                 tokens_per_s=338.0, **busy)
    quiet_slow = timed(slow, tokens_per_s=338.0)
    assert verdicts([base], [quiet_slow])[0][("lora", "throughput.tokens_per_s")].verdict == REGRESSION
    for pair in ((base, slow), (slow, base)):   # either side contended
        table, rows = verdicts([pair[0]], [pair[1]])
        row = table[("lora", "throughput.tokens_per_s")]
        side = "candidate" if pair[1] is slow else "baseline"
        assert row.verdict == INCONCLUSIVE and row.note == f"contended: {side} {words}"
    table, rows = verdicts([base], [slow])
    assert table[("lora", "memory.train.peak_bytes")].verdict == REGRESSION   # memory still judged
    assert exit_code(rows) == 1
    table, rows = verdicts([base], [with_(slow, **{"memory.train.peak_bytes": base["memory"]["train"]["peak_bytes"]})])
    assert exit_code(rows) == 0 and exit_code(rows, fail_inconclusive=True) == 1
    assert summary(rows, exit_code=0).endswith("1 inconclusive, throughput of 1 run not judged: machine contended)")


def test_contention_limits_are_tolerances():
    base = timed(by_method("lora"), tokens_per_s=520.0)
    busy = timed(base, tokens_per_s=338.0, contention=dict(QUIET, others_busy_cores=0.8))   # 40% of 2 cores
    assert verdicts([base], [busy])[0][("lora", "throughput.tokens_per_s")].verdict == INCONCLUSIVE
    table, _ = verdicts([base], [busy], contended_others_pct=50.0)
    assert table[("lora", "throughput.tokens_per_s")].verdict == REGRESSION


def test_records_without_contention_figures_are_judged_as_before():
    base = by_method("lora")
    slow = with_(base, **{"throughput.tokens_per_s": 260.0})
    assert verdicts([base], [slow])[0][("lora", "throughput.tokens_per_s")].verdict == REGRESSION


# --- canonical model identity --------------------------------------------------------------------

def local_record(typed, resolved, **config):
    """A record of a local model directory typed as `typed`, its spec hashed as the matrix hashes it."""
    spec = finish_spec({**by_method("lora")["config"], **config, "model": typed, "model_path": resolved})
    return with_(by_method("lora"), model=typed, model_path=resolved, spec_hash=spec["spec_hash"],
                 config={k: v for k, v in spec.items() if k not in ("spec_hash", "compare_key", "group_key")})


def test_a_local_model_typed_two_ways_is_one_run(tmp_path):
    relative, absolute = local_record("./m", "/work/m"), local_record("/work/m", "/work/m")
    assert relative["spec_hash"] != absolute["spec_hash"]        # the hash saw the name as typed
    assert key_of(relative) == key_of(absolute) == ("/work/m", "lora", absolute["spec_hash"])
    table, rows = verdicts([relative], [absolute])
    assert {row.verdict for row in rows} == {PASS} and len(rows) > 1
    other_work = local_record("./m", "/work/m", steps=99)
    assert key_of(other_work) != key_of(absolute)                 # the rest of the work still counts


@pytest.mark.parametrize("record, identity", [
    ({"model": "tiny-llama", "model_path": "/a/.cache/models/tiny-llama"}, "tiny-llama"),
    ({"model": "smollm2-135m", "model_path": "/b/.cache/models/smollm2-135m"}, "smollm2-135m"),
    ({"model": "shape:llama-3.2-1b", "model_path": "/c/.cache/models/shape-llama-3.2-1b-3937a5bb"},
     "shape:llama-3.2-1b"),
    ({"model": "HuggingFaceTB/SmolLM2-135M",
      "model_path": "/h/hub/models--HuggingFaceTB--SmolLM2-135M/snapshots/12fd25f77366fa6b3b4b768ec3050bf629380bac"},
     "HuggingFaceTB/SmolLM2-135M@12fd25f77366fa6b3b4b768ec3050bf629380bac"),
    ({"model": "org/m", "model_path": "/elsewhere/org-m",                    # the driver's fetch record
      "config": {"model_source": {"hub_id": "org/m", "revision": "abc123", "path": "/elsewhere/org-m"}}},
     "org/m@abc123"),
    ({"model": "/h/hub/models--org--m/snapshots/r9", "model_path": "/h/hub/models--org--m/snapshots/r9"},
     "org/m@r9"),                                                              # a snapshot typed as a path
    ({"model": "checkpoints/my-model", "model_path": "/repo/checkpoints/my-model"}, "/repo/checkpoints/my-model"),
    ({"model": "./gone", "model_path": None}, "./gone"),                       # never resolved
])
def test_model_identity(record, identity):
    assert model_identity(record) == identity


def test_built_in_and_hub_records_keep_their_spec_hash():
    for record in (by_method("lora"), with_(by_method("lora"), model="org/m",
                                            model_path="/h/models--org--m/snapshots/r1")):
        assert work_hash(record) == record["spec_hash"]


def test_two_hub_revisions_are_two_models():
    a = with_(by_method("lora"), model="org/m", model_path="/h/models--org--m/snapshots/r1")
    b = with_(a, model_path="/h/models--org--m/snapshots/r2")
    assert key_of(a)[0] == "org/m@r1" and key_of(a) != key_of(b)


# --- a gate that compared nothing ----------------------------------------------------------------

@pytest.fixture
def gate_only(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", {"gate": "bench.results.gate.command"})


@pytest.mark.parametrize("flags", [[], ["--allow-missing"]])
def test_a_gate_that_compared_nothing_exits_2_with_the_reason(gate_only, capsys, tmp_path, flags):
    (tmp_path / "a.jsonl").write_text(json.dumps(by_method("lora")) + "\n")
    (tmp_path / "b.jsonl").write_text(json.dumps(with_(by_method("lora"), spec_hash="ffff0000ffff0000")) + "\n")
    code = cli.main(["gate", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), *flags])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "compared nothing: baseline and candidate share no run" in err
    assert ("baseline has 1 (e.g. smollm2-135m lora abcd0002)" in err
            and "candidate 1 (e.g. smollm2-135m lora ffff0000)" in err)

