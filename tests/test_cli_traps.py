"""What a newcomer trips over in the CLI: a limit of 0, hidden defaults, where results go, YAML, doubled errors."""

import subprocess

import pytest

from bench.cli import build_parser
from bench.run.command import overrides_from
from bench.run.profile import load_profile
from bench.util.errors import BenchError
from tests.conftest import cli_command, cli_env, one_clean_error_line, run_cli


@pytest.mark.parametrize("flag, key", [("--mmlu-limit", "limit"), ("--target-limit", "target_limit"),
                                       ("--forget-limit", "forget_limit")])
def test_a_limit_of_zero_is_refused_and_all_means_every_question(flag, key, tmp_path):
    result = run_cli("--profile", "smoke", flag, "0", "--out", tmp_path / "out", stub={})  # no real run if accepted
    assert "use all for every question" in one_clean_error_line(result)
    assert not (tmp_path / "out").exists()
    overrides = overrides_from(build_parser("run").parse_args(["run", flag, "all"]))
    assert overrides == {"eval": {key: 0}}  # 0 is "all" inside a profile, as profiles/mmlu-5shot.toml says
    assert load_profile("smoke", overrides=overrides)["eval"][key] == 0


def test_run_help_shows_the_default_profiles_values():
    settings = load_profile("default")
    text = " ".join(run_cli("run", "--help").stdout.split())
    assert f"optimizer steps (default profile: {settings['run']['steps']})" in text
    assert f"tokens per sequence (default profile: {settings['run']['seq_len']})" in text
    assert f"(default profile: {' '.join(settings['run']['methods'])})" in text


def test_top_level_help_lists_sub_commands_and_says_run_is_the_default():
    text = run_cli("--help").stdout
    assert all(name in text for name in ("report", "gate", "plan", "fit"))
    assert "`run` is the default" in text and "--models" in text and "--max-memory" in text


def test_out_defaults_to_reports_under_the_working_directory(tmp_path):
    args = ("--profile", "smoke", "--methods", "lora", "--no-eval", "--no-report")
    done = subprocess.run(cli_command(*args, stub={"lora": "ok"}), capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env=cli_env(args, stub={"lora": "ok"}))
    assert done.returncode == 0, done.stdout + done.stderr
    out = (tmp_path / "reports" / "smoke").resolve()
    assert (out / "results.jsonl").is_file() and f"writing to {out}" in done.stdout


def test_a_yaml_profile_is_read_with_the_same_keys_and_strictness(tmp_path):
    good = tmp_path / "mine.yaml"
    good.write_text("run:\n  steps: 3\n  methods: [lora]\nlora:\n  r: 4\n")
    settings = load_profile(str(good))
    assert (settings["run"]["steps"], settings["run"]["methods"], settings["lora"]["r"]) == (3, ["lora"], 4)
    bad = tmp_path / "bad.yml"
    bad.write_text("run:\n  steps: three\n  epochs: 2\n")
    with pytest.raises(BenchError, match=r"run.steps must be an integer, got 'three'.*unknown key run.epochs|"
                                         r"unknown key run.epochs.*run.steps must be an integer"):
        load_profile(str(bad))


def test_one_error_per_cause_no_spurious_warm_up_error(tmp_path):
    """steps = 2 is below the default warm-up; the warm-up is lowered, so the unknown key is the only error."""
    profile = tmp_path / "mine.toml"
    profile.write_text("[run]\nsteps = 2\nepochs = 1\n")
    with pytest.raises(BenchError) as info:
        load_profile(str(profile))
    assert "unknown key run.epochs" in str(info.value) and "run.warmup_steps must be" not in str(info.value)
    assert "; " not in str(info.value).split("valid keys:")[1]  # one cause, one error
