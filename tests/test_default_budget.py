"""A CPU run given no budget gets a stated share of the available memory, so running out is an oom record."""

import sys

from bench.results import store
from bench.run import budget, launcher
from bench.run.matrix import build_matrix, finish_spec, run_id
from bench.run.profile import load_profile
from tests.conftest import run_cli

MiB = 2**20


def cpu_spec(**run) -> dict:
    profile = load_profile("smoke", overrides={"run": {"methods": ["lora"], "device": "cpu", **run}})
    return dict(build_matrix(profile)[0])


def test_the_default_is_a_share_of_available_memory_split_among_concurrent_runs():
    one = budget.default_budget(available_bytes=10_000 * MiB)
    assert one["bytes"] == int(budget.DEFAULT_SHARE * 10_000 * MiB) and "85% of the 9.77 GiB available" in one["source"]
    assert budget.default_budget(concurrent=2, available_bytes=10_000 * MiB)["bytes"] == one["bytes"] // 2


def test_only_cpu_runs_without_a_budget_get_it_and_their_hashes_stay():
    given, free, cuda = cpu_spec(max_memory="3GiB"), cpu_spec(), cpu_spec(device="cuda")
    hashes = [s["spec_hash"] for s in (given, free, cuda)]
    applied = budget.apply_default([given, free, cuda], on_cpu=lambda s: s["device"] == "cpu",
                                   available_bytes=8000 * MiB)
    assert free["memory_budget"] == applied and "memory_budget" not in given and "memory_budget" not in cuda
    assert [finish_spec(dict(s))["spec_hash"] for s in (given, free, cuda)] == hashes


GREEDY = "x = bytearray(1 << 30)  # 1 GiB, over a 300 MiB data-segment limit\nprint('allocated')"


def test_a_run_over_the_default_budget_is_an_oom_record_naming_it(tmp_path, monkeypatch):
    spec = cpu_spec()
    budget.apply_default([spec], on_cpu=lambda s: True, available_bytes=int(300 * MiB / budget.DEFAULT_SHARE) + 1)
    spec["run_id"] = run_id(spec)
    monkeypatch.setattr(launcher, "worker_command", lambda spec, path: [sys.executable, "-c", GREEDY])
    record = launcher.launch(spec, out_dir=tmp_path, echo=lambda line: None)
    assert record["status"] == "oom" and "under the default budget 300.00 MiB, 85% of" in record["error"]
    assert record["memory"]["budget_bytes"] == 300 * MiB
    assert record["memory"]["budget_source"].startswith("the default budget")


def test_a_run_whose_planner_floor_exceeds_its_budget_is_flagged():
    spec = cpu_spec()
    budget.apply_default([spec], on_cpu=lambda s: True, available_bytes=MiB)
    (line,) = budget.over_budget([spec], device_of=lambda s: "cpu")
    assert line.startswith("tiny-llama x lora: the planner's floor ") and "exceeds the default budget" in line
    roomy = cpu_spec(max_memory="1TiB")
    assert budget.over_budget([roomy], device_of=lambda s: "cpu") == []


def test_the_cli_states_the_default_and_the_record_keeps_it(tmp_path):
    out = tmp_path / "out"
    done = run_cli("--profile", "smoke", "--methods", "lora", "--device", "cpu", "--no-eval", "--no-report",
                   "--out", out, stub={"lora": "ok"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "memory budget per CPU run: the default budget" in done.stdout
    (record,), _ = store.read(out)
    assert record["memory"]["budget_source"].startswith("the default budget") and record["memory"]["budget_bytes"] > 0
