from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.profile import PROFILES_DIR, available, load_profile


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
    ({"eval": {"forget": ["hellaswag", "mmlu"]}}, "eval.forget: unknown task 'mmlu'; valid choices: hellaswag, arc-challenge"),
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
