"""scripts/micro_noise.py: thresholds from noise, out-of-sample false alarms, and the check micro_bench.sh runs."""

import json
import subprocess
import sys

import pytest

sys.path.insert(0, "scripts")
import micro_noise  # noqa: E402


def session(tmp_path, name, cpu="AMD EPYC", **mins):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"machine_info": {"cpu": {"brand_raw": cpu}},
                                "benchmarks": [{"name": k, "stats": {"min": v}} for k, v in mins.items()]}))
    return path


def test_thresholds_cover_the_noise_seen_with_a_margin_and_a_floor():
    plain = [{"steady": 1.00, "fair": 1.0, "noisy": 1.0}, {"steady": 1.01, "fair": 1.1, "noisy": 1.4},
             {"steady": 0.99, "fair": 1.0, "noisy": 0.8}]
    limits = micro_noise.thresholds_from(plain)
    # steady: worst ratio 1.01/0.99 = +2.0% -> +7% -> the 10% floor; fair: +10% -> +15%;
    # noisy: 1.4/0.8 = +75% -> +80%, above the 25% cap: timed, not gated
    assert limits == {"steady": 10, "fair": 15, "noisy": None}


def test_out_of_sample_false_alarms_count_a_session_the_others_did_not_foresee():
    calm = [{"a": 1.0}, {"a": 1.02}, {"a": 0.99}]
    assert micro_noise.loo_false_alarms(calm) == (0, 12)
    spiky = calm + [{"a": 2.0}]  # one session twice as slow: left out, the others' threshold cannot know it
    alarms, pairs = micro_noise.loo_false_alarms(spiky)
    assert pairs == 24 and alarms == 3  # held-out 2.0 is slower than each of the three others


def test_check_names_each_benchmark_over_its_limit(tmp_path, capsys):
    ref = micro_noise.REF
    base = session(tmp_path, "base", **{ref: 1.0}, steady=1.0, noisy=1.0, new_one=1.0)
    limits = tmp_path / "thresholds.json"
    limits.write_text(json.dumps({"steady": 10, "noisy": 80, "new_one": 50}))
    assert micro_noise.check(base, session(tmp_path, "ok", **{ref: 1.0}, steady=1.09, noisy=1.7, new_one=1.4),
                             limits) == 0
    # a machine twice as slow throughout (the reference too) is not a regression
    assert micro_noise.check(base, session(tmp_path, "busy", **{ref: 2.0}, steady=2.1, noisy=3.0, new_one=2.5),
                             limits) == 0
    capsys.readouterr()
    assert micro_noise.check(base, session(tmp_path, "slow", **{ref: 1.0}, steady=1.25, noisy=1.7, new_one=1.6),
                             limits) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == ["new_one: min/reference +60.0% (limit +50%)", "steady: min/reference +25.0% (limit +10%)"]
    # slower code on a faster machine: the ratio shows it where the absolute time cannot
    assert micro_noise.check(base, session(tmp_path, "fast", **{ref: 0.5}, steady=0.75, noisy=0.5, new_one=0.5),
                             limits) == 1
    assert micro_noise.check(base, tmp_path / "missing.json", limits) == 2
    other_cpu = session(tmp_path, "intel", cpu="Intel(R) Xeon(R) Processor", **{ref: 9.0}, steady=9.0, noisy=9.0,
                        new_one=9.0)
    capsys.readouterr()
    assert micro_noise.check(base, other_cpu, limits) == 3  # another CPU: not compared
    assert capsys.readouterr().out == "baseline measured on AMD EPYC, this machine is Intel(R) Xeon(R) Processor\n"
    limits.write_text(json.dumps({"steady": 10, "noisy": None}))  # too noisy, never measured: shown, not gated
    assert micro_noise.check(base, session(tmp_path, "noisy", **{ref: 1.0}, steady=1.0, noisy=3.0, new_one=3.0),
                             limits) == 0


def test_slowed_sessions_take_the_injected_slowdown_off_the_reference():
    ref = micro_noise.REF
    plain = micro_noise.normalised({ref: 2.0, "a": 1.0})
    slowed = micro_noise.normalised({ref: 2.0 * micro_noise.SLOWDOWN, "a": 1.0 * micro_noise.SLOWDOWN}, slowed=True)
    assert plain == {"a": 0.5} and slowed["a"] == pytest.approx(0.5 * micro_noise.SLOWDOWN)


def test_committed_thresholds_cover_every_micro_benchmark():
    limits = json.loads(open("profiles/baselines/micro/thresholds.json").read())
    names = {b["name"] for b in json.loads(open("profiles/baselines/micro/amd-epyc.json").read())["benchmarks"]}
    assert names - {micro_noise.REF} <= set(limits)
    # none may be gated (docs/gate.md: the noise measured so far allows none); any that is, within floor and cap
    assert all(micro_noise.FLOOR_PCT <= v <= micro_noise.CAP_PCT for v in limits.values() if v is not None)


@pytest.mark.parametrize("args", [["check"], ["nope", "x"]])
def test_bad_arguments_exit_2(args):
    done = subprocess.run([sys.executable, "scripts/micro_noise.py", *args], capture_output=True, text=True)
    assert done.returncode == 2
