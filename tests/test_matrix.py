import pytest

from bench.run.matrix import build_matrix, run_id
from bench.run.profile import load_profile
from bench.util.errors import BenchError


def specs(**run):
    return build_matrix(load_profile("smoke", overrides={"run": run} if run else None))


def test_methods_share_everything_but_the_method():
    matrix = specs(methods=["full", "lora", "qlora"])
    assert len({s["compare_key"] for s in matrix}) == 1
    assert len({s["spec_hash"] for s in matrix}) == 3
    assert len({s["group_key"] for s in matrix}) == 1
    for a in matrix:
        differing = {k for k in a if a[k] != matrix[0][k]}
        assert differing <= {"method", "spec_hash"}


def test_seeds_multiply_runs_except_base_and_group_across_seeds():
    matrix = specs(methods=["base", "lora", "qlora"], seeds=[0, 1, 2])
    assert sorted((s["method"], s["seed"]) for s in matrix) == [
        ("base", 0), ("lora", 0), ("lora", 1), ("lora", 2), ("qlora", 0), ("qlora", 1), ("qlora", 2)]
    assert len({s["group_key"] for s in matrix}) == 1          # one comparison across seeds
    assert len({s["compare_key"] for s in matrix}) == 3        # one matched comparison per seed
    assert len({s["spec_hash"] for s in matrix}) == 7
    by_seed = {s["seed"]: s["compare_key"] for s in matrix if s["method"] == "lora"}
    assert all(s["compare_key"] == by_seed[s["seed"]] for s in matrix)


def test_work_settings_change_the_hash_and_non_work_settings_do_not():
    base = specs(methods=["lora"])[0]
    assert specs(methods=["lora"], steps=7)[0]["spec_hash"] != base["spec_hash"]
    assert specs(methods=["lora"], run_timeout_s=99)[0]["spec_hash"] == base["spec_hash"]


def test_spec_keeps_device_and_precision_as_requested_and_resolves_the_path(tiny_path):
    spec = specs(precision="auto")[0]  # smoke pins fp32; auto is what must stay unresolved
    assert spec["device"] == "auto" and spec["precision"] == "auto"   # the worker resolves both where it runs
    assert "compute_dtype" not in spec and spec["model_path"] == str(tiny_path)
    assert specs(precision="bf16-mixed")[0]["spec_hash"] != spec["spec_hash"]


def test_run_id_is_a_safe_file_name():
    spec = dict(specs()[0], model="../../etc/<b>evil</b>")
    rid = run_id(spec)
    assert "/" not in rid and "<" not in rid and not rid.startswith(".")


def test_unknown_model_and_empty_targets_are_errors():
    with pytest.raises(BenchError, match="unknown model 'no-such-model'; valid choices: smollm2-135m, tiny-llama"):
        build_matrix(load_profile("smoke", overrides={"run": {"models": ["no-such-model"]}}))
    with pytest.raises(BenchError,
                       match=r"LoRA target modules \['qkv'\] match nothing in 'tiny-llama'; valid choices: all-linear"):
        build_matrix(load_profile("smoke", overrides={"lora": {"target_modules": ["qkv"]}}))
