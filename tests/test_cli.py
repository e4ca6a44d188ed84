"""run_bench.py end to end on tiny-llama: exit 0 (all ok), 1 (a run failed), 2 (bad input)."""

import json

import pytest

from bench import store
from bench.schema import problems
from tests.conftest import one_clean_error_line, run_cli


def test_a_run_is_recorded_with_every_figure(tmp_path):
    out = tmp_path / "out"
    result = run_cli("--profile", "smoke", "--methods", "lora", "--steps", "3", "--seeds", "1", "--no-eval", "--precision", "auto",
                     "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[1/1] tiny-llama x lora" in result.stdout and "results:" in result.stdout
    (record,), bad = store.read(out)
    assert bad == [] and problems(record) == []
    assert record["status"] == "ok" and record["method"] == "lora" and record["config"]["seed"] == record["seed"] == 1
    assert record["precision"]["requested"] == "auto" and record["precision"]["policy"] in ("fp32", "bf16-true")
    assert record["memory"]["device"] == "cpu" and record["config"]["device"] == "auto"
    memory = record["memory"]
    assert memory["baseline_bytes"] > 100 * 2**20
    assert all(memory[p]["peak_bytes"] >= memory["baseline_bytes"] * 0.9 for p in ("load", "train", "eval"))
    assert memory["process_peak_bytes"] >= max(memory[p]["peak_bytes"] for p in ("load", "train", "eval"))
    assert record["throughput"]["tokens_per_s"] > 0 and len(record["loss"]) == 3
    assert record["env"]["packages"]["torch"] and "git_sha" in record["env"]
    assert (out / "runs" / record["run_id"] / "worker.log").exists()


def test_a_failed_run_is_a_result_and_exits_1(tmp_path):
    out = tmp_path / "out"
    result = run_cli("--profile", "smoke", "--methods", "full", "--run-timeout", "1", "--no-eval",
                     "--no-report", "--out", out)
    assert result.returncode == 1, result.stdout + result.stderr
    (record,), _ = store.read(out)
    assert record["status"] == "timeout" and "timed out after 1 s" in record["error"]
    assert problems(record) == []


@pytest.mark.parametrize("args, message", [
    (["--models", "no-such-model"], "unknown model 'no-such-model'; valid choices"),
    (["--methods", "prefix"], "unknown method 'prefix'; valid choices: base, full, lora"),
    (["--lora-r", "0"], "lora.r must be > 0"),
    (["--steps", "0"], "run.steps must be > 0"),
    (["--target-modules", "nothing_here"], "match nothing in 'tiny-llama'; valid choices: all-linear"),
    (["--profile", "nonexistent"], "unknown profile 'nonexistent'; valid choices:"),
    (["--seeds", "0", "one"], "seeds are non-negative integers, got 'one'"),
    (["--steps", "abc"], "argument --steps: invalid int value: 'abc'"),
    (["--precision", "bf17"], "unknown run.precision 'bf17'; valid choices: auto, fp32, bf16-true, bf16-mixed, fp16-mixed"),
    (["--device", "cuda"], "device 'cuda' requested but no NVIDIA GPU is visible"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    out = tmp_path / "out"
    result = run_cli("--profile", "smoke", *args, "--out", out)
    assert message in one_clean_error_line(result)
    assert not out.exists()


@pytest.mark.parametrize("text, message", [
    ("[run]\nsteps = 3\nepochs = 2\n", "unknown key run.epochs"),
    ("[run]\nsteps = 'three'\n", "run.steps must be an integer"),
    ("[lora]\nr = -1\n", "lora.r must be > 0"),
])
def test_bad_profile_file_is_one_line_and_exit_2(tmp_path, text, message):
    profile = tmp_path / "mine.toml"
    profile.write_text(text)
    result = run_cli("--profile", profile, "--out", tmp_path / "out")
    assert message in one_clean_error_line(result)
    assert not (tmp_path / "out").exists()


def test_help_lists_sub_commands_and_options():
    result = run_cli("--help")
    assert result.returncode == 0 and "report" in result.stdout and "run" in result.stdout
    result = run_cli("run", "--help")
    for option in ("--profile", "--models", "--methods", "--steps", "--seq-len", "--batch-size", "--seeds", "--precision", "--out"):
        assert option in result.stdout
