
import pytest

from bench.run.profile import PROFILES_DIR, available, load_profile
from bench.util.errors import BenchError


@pytest.mark.parametrize("path", sorted(p for p in PROFILES_DIR.rglob("*.toml") if not p.name.startswith("_")
                                        and "baselines" not in p.parts), ids=lambda p: p.name)
def test_every_profile_validates(path):
    settings = load_profile(str(path))
    assert settings["run"]["steps"] > 0


def test_default_and_smoke_are_what_the_issue_asks():
    assert load_profile("smoke")["run"]["models"] == ["tiny-llama"]
    assert load_profile("smoke")["run"]["methods"] == ["full", "lora", "qlora"]
    assert load_profile("default")["run"]["methods"] == ["base", "full", "lora", "qlora"]
    assert "default" in available() and "_defaults" not in available()


@pytest.mark.parametrize("overrides, message", [
    ({"run": {"steps": 0}}, "run.steps must be > 0"),
    ({"run": {"steps": -3}}, "run.steps must be > 0"),
    ({"lora": {"r": 0}}, "lora.r must be > 0"),
    ({"run": {"methods": ["lora", "prefix"]}}, "unknown method 'prefix'; valid choices: base, full"),
    ({"run": {"optimizer": "sgd"}}, "valid choices: adamw_torch"),
    ({"run": {"bogus": 1}}, "unknown key run.bogus"),
    ({"run": {"steps": "ten"}}, "run.steps must be an integer"),
    ({"eval": {"shots": 26}}, "shots"),
    ({"run": {"max_memory": "lots"}}, "cannot parse memory size"),
    ({"eval": {"forget": ["hellaswag", "mmlu"]}},
     "eval.forget: unknown task 'mmlu'; valid choices: hellaswag, arc-challenge"),
    ({"eval": {"forget": ["piqa", "piqa"]}}, "eval.forget names a task twice"),
    ({"eval": {"forget_limit": -1}}, "eval.forget_limit must be >= 0"),
    ({"data": {"source": "arc-challenge"}, "eval": {"forget": ["arc-challenge"]}}, "also the target task"),
])
def test_bad_settings_are_named(overrides, message):
    with pytest.raises(BenchError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_profile("default", overrides=overrides)


def test_profile_file_errors(tmp_path):
    bad_key = tmp_path / "p.toml"
    bad_key.write_text("[run]\nstepz = 3\n")
    with pytest.raises(BenchError, match="unknown key run.stepz"):
        load_profile(str(bad_key))
    bad_type = tmp_path / "q.toml"
    bad_type.write_text("[lora]\nr = 'eight'\n")
    with pytest.raises(BenchError, match="lora.r must be an integer"):
        load_profile(str(bad_type))
    broken = tmp_path / "r.toml"
    broken.write_text("[run\n")
    with pytest.raises(BenchError, match="not valid TOML"):
        load_profile(str(broken))
    with pytest.raises(BenchError, match="unknown profile 'nope'; valid choices: .*default"):
        load_profile("nope")


@pytest.mark.parametrize("steps, warmup", [(1, 0), (2, 1), (3, 2), (10, 2)])
def test_warmup_is_at_most_steps_minus_one_and_says_so(steps, warmup):
    """The smoke profile's warm-up is 2: `--steps 2` (or 1) lowers it, so one step is still timed."""
    from bench.run.matrix import build_matrix
    from bench.measure.timer import throughput

    settings = load_profile("smoke", overrides={"run": {"steps": steps, "methods": ["lora"]}})
    assert settings["run"]["warmup_steps"] == warmup
    assert settings["notes"] == ([] if steps > 2 else [
        f"run.warmup_steps = 2 is not below steps = {steps}: warm-up lowered to {warmup}; "
        "throughput times the last step only"])
    (spec,) = build_matrix(settings)
    assert spec["warmup_steps"] == warmup
    timed = throughput([1.0] * steps, [100] * steps, warmup_steps=spec["warmup_steps"])  # what the record gets
    assert (timed["warmup_steps"], timed["steps_measured"]) == (warmup, steps - warmup)


def test_a_negative_warmup_is_still_refused():
    with pytest.raises(BenchError, match=r"run\.warmup_steps must be in \[0, steps\) = \[0, 2\), got -1"):
        load_profile("smoke", overrides={"run": {"steps": 2, "warmup_steps": -1}})


def test_the_cli_says_the_warmup_was_lowered(tmp_path):
    """Stopped right after (a data file that does not exist), so nothing trains."""
    from tests.conftest import run_cli

    result = run_cli("--profile", "smoke", "--steps", "2", "--data", tmp_path / "missing.jsonl",
                     "--out", tmp_path / "o")
    assert result.returncode == 2, result.stderr
    assert ("note: run.warmup_steps = 2 is not below steps = 2: warm-up lowered to 1; "
            "throughput times the last step only") in result.stdout.splitlines()
