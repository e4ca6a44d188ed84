"""run_bench.py end to end on tiny-llama: exit 0 (all ok), 1 (a run failed), 2 (bad input)."""

import json
import math

import pytest

from bench.results import store
from bench.results.schema import problems
from tests.conftest import one_clean_error_line, run_cli


def test_a_run_is_recorded_with_every_figure(smoke_run):
    out, record = smoke_run.out, smoke_run.records["lora"]
    assert "[3/4] tiny-llama x lora" in smoke_run.stdout and "results:" in smoke_run.stdout
    records, bad = store.read(out)
    assert bad == [] and [r["method"] for r in records] == ["base", "full", "lora", "qlora"]
    assert all(problems(r) == [] for r in records)
    assert record["status"] == "ok" and record["method"] == "lora" and record["config"]["seed"] == record["seed"] == 0
    assert record["precision"]["requested"] == "fp32" and record["precision"]["policy"] == "fp32"
    assert record["memory"]["device"] == "cpu" and record["config"]["device"] == "auto"
    memory = record["memory"]
    assert memory["baseline_bytes"] > 100 * 2**20
    assert all(memory[p]["peak_bytes"] >= memory["baseline_bytes"] * 0.9 for p in ("load", "train", "eval"))
    assert memory["process_peak_bytes"] >= max(memory[p]["peak_bytes"] for p in ("load", "train", "eval"))
    assert record["throughput"]["tokens_per_s"] > 0 and len(record["loss"]) == 3
    assert record["env"]["packages"]["torch"] and "git_sha" in record["env"]
    log = (out / "runs" / record["run_id"] / "worker.log").read_text()
    assert "train step 3/3" in log and "held-out loss" in log


def test_a_run_records_how_contended_its_timed_steps_were(smoke_run):
    """The machine's figures over the train phase and the calibration's spread (their values are
    whatever the neighbours did; bench.results.gate.contention judges them)."""
    record = smoke_run.records["lora"]
    busy = record["contention"]
    assert busy["cores"] >= 1 and busy["wall_s"] <= record["memory"]["train"]["wall_s"] + 1
    assert busy["others_busy_cores"] is None or busy["others_busy_cores"] >= 0
    assert busy["load_avg_end"] is None or busy["load_avg_end"] >= 0
    assert record["env"]["calibration"]["spread_pct"] >= 0


def lines_of(out, relative) -> list:
    return [json.loads(line) for line in (out / relative).read_text().splitlines()]


@pytest.mark.parametrize("method", ["base", "full", "lora", "qlora"])
def test_the_child_evaluates_the_trained_model(smoke_run, method):
    """The worker's evaluation under pytest: held-out loss on the held-out examples, the target
    task and MMLU through lm-eval, one prediction line per question scored; for a plain (base),
    a peft-wrapped (full's plain weights, lora) and a 4-bit + peft model (qlora)."""
    record = smoke_run.records[method]
    heldout = record["heldout"]
    assert heldout["n"] == 8 == record["data"]["heldout_examples"] and math.isfinite(heldout["loss"]), heldout
    target = record["tasks"]["ftbench_arc_easy"]
    assert target["role"] == "target" and target["n"] == 4 and 0 <= target["acc"] <= 1
    predictions = lines_of(smoke_run.out, target["predictions_file"])
    assert len(predictions) == 4 and sum(p["correct"] for p in predictions) == round(target["acc"] * 4)
    mmlu = record["mmlu"]
    assert mmlu["n"] == 57 and 0 <= mmlu["acc"] <= 1  # --mmlu-limit 1: one question per subject
    assert mmlu["questions_per_s"] > 0 and target["questions_per_s"] > 0
    scored = lines_of(smoke_run.out, mmlu["predictions_file"])
    assert len(scored) == 57 and sum(p["correct"] for p in scored) == round(mmlu["acc"] * 57)


def test_a_failed_run_is_a_result_and_exits_1(tmp_path):
    out = tmp_path / "out"
    result = run_cli("--profile", "smoke", "--methods", "full", "--run-timeout", "1", "--no-eval",
                     "--no-report", "--out", out, stub={"full": "hang"})
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
    (["--precision", "bf17"],
     "unknown run.precision 'bf17'; valid choices: auto, fp32, bf16-true, bf16-mixed, fp16-mixed"),
    (["--device", "cuda"], "device 'cuda' requested but torch sees no CUDA device here"),
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
    for option in ("--profile", "--models", "--methods", "--steps", "--seq-len", "--batch-size", "--seeds",
                   "--precision", "--out"):
        assert option in result.stdout


def test_a_sub_command_imports_only_its_own_module():
    """`run` (and a bad input to it) parses without the report's stack: pandas and pyecharts cost
    about 0.6 s of every invocation when each sub-command's module was imported to build the parser."""
    import subprocess
    import sys

    code = ("import sys; from bench import cli; code = cli.main(['--profile', 'smoke', '--steps', '0']); "
            "print(code, sorted(m for m in ('pandas', 'pyecharts', 'bench.results.report', 'torch') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "2 []", done.stdout + done.stderr
