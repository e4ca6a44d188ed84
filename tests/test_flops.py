"""Model FLOPs per token and MFU, checked by hand on tiny-llama: the expected figure is computed
here from config.json alone, the code under test counts the modules of the built model."""

import json

import pytest

from bench.measure import flops
from bench.results.schema import problems
from bench.run.matrix import build_matrix
from bench.run.profile import load_profile
from bench.training import methods, precision

SEQ = 128


def build(method):
    (one,) = build_matrix(load_profile("smoke", overrides={"run": {"methods": [method]}}))
    spec = precision.apply(dict(one, device="cpu"), precision.FIXED["fp32"])
    return methods.build(spec), spec


def by_hand(config: dict, *, method: str, r: int) -> int:
    """PaLM's 6N + 12LHQT with frozen weights at 4N, from the config alone (tiny-llama: no biases)."""
    h, i, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    heads, kv, hd = config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]
    shapes = {"q_proj": (h, heads * hd), "k_proj": (h, kv * hd), "v_proj": (h, kv * hd), "o_proj": (heads * hd, h),
              "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}
    decoder = layers * sum(a * b for a, b in shapes.values())
    lm_head = config["vocab_size"] * h  # tied to the embedding: still one matmul per token
    attention = 12 * layers * heads * hd * SEQ
    if method == "full":
        return 6 * (decoder + lm_head) + attention
    adapters = layers * sum(r * (a + b) for a, b in shapes.values())  # A: in x r, B: r x out, every linear
    return 4 * (decoder + lm_head) + 6 * adapters + attention


@pytest.mark.parametrize("method", ["full", "lora", "qlora", "dora", "lora8"])
def test_flops_per_token_equal_the_hand_count(method, tiny_path):
    config = json.loads((tiny_path / "config.json").read_text())
    model, spec = build(method)
    got = flops.figures(model, seq_len=SEQ, tokens_per_s=1.0, peak_gflops=None)
    assert got["model_flops_per_token"] == by_hand(config, method=method, r=spec["lora_r"])
    assert got["mfu"] is None  # no peak, no MFU


def test_tiny_llama_figures_written_out():
    """The same count as plain numbers (h 64, i 128, 2 layers, 4 heads x 16, vocab 49,152, r 8):
    full 6 x (81,920 + 3,145,728) + 196,608; LoRA 4 x 3,227,648 + 6 x 17,408 + 196,608."""
    assert flops.per_token(frozen=0, trainable=81_920 + 3_145_728, layers=2, heads=4, head_dim=16,
                           seq_len=SEQ) == 19_562_496
    assert flops.per_token(frozen=3_227_648, trainable=17_408, layers=2, heads=4, head_dim=16,
                           seq_len=SEQ) == 13_211_648


def test_mfu_is_achieved_model_flops_over_the_measured_peak():
    model, _ = build("lora")
    got = flops.figures(model, seq_len=SEQ, tokens_per_s=500.0, peak_gflops=20.0, world=2)
    assert got["mfu"] == pytest.approx(13_211_648 * 500.0 / (20.0e9 * 2), rel=1e-12)
    assert got["flops_counted"]["trainable_matmul_params"] == 17_408


def test_mfu_above_100_percent_is_a_flag_not_a_failed_run():
    """Before: schema.problems failed such a record, the worker stored it as `error`, and `fit`
    stopped at its first probe. Now the record is ok and says why the figure cannot be right."""
    from bench.run.worker import _check

    model, _ = build("lora")
    got = flops.figures(model, seq_len=SEQ, tokens_per_s=500.0, peak_gflops=13_211_648 * 500.0 / 1.07e9)
    assert got["mfu"] == pytest.approx(1.07) and "107.0% of the measured matmul peak" in got["mfu_flag"]
    record = _ok_record(mfu=got["mfu"], flag=got["mfu_flag"])
    assert problems(record) == []
    _check(record)  # no raise: the run stays ok
    assert problems(_ok_record(mfu=0.42)) == []
    assert any("without throughput.mfu_flag" in p for p in problems(_ok_record(mfu=1.07)))  # unexplained: refused
    assert any("throughput.mfu is 0.0%" in p for p in problems(_ok_record(mfu=0.0)))


def test_mfu_against_the_datasheet_and_its_flag():
    model, _ = build("lora")
    got = flops.figures(model, seq_len=SEQ, tokens_per_s=500.0, peak_gflops=20.0, datasheet_gflops=40.0, world=2)
    assert got["mfu_datasheet"] == pytest.approx(got["mfu"] / 2) and got["mfu_flag"] is None
    assert flops.flag(mfu=0.9, mfu_datasheet=1.2).startswith("model FLOPs at 120.0% of the device's datasheet peak")
    assert flops.figures(model, seq_len=SEQ, tokens_per_s=1.0, peak_gflops=None)["mfu_datasheet"] is None


def _ok_record(*, mfu, flag=None):
    from bench.results.record import skeleton

    record = skeleton({"method": "lora", "device": "cpu"})
    record["params"] = {"trainable": 1, "total": 2, "trainable_pct": 50.0}
    record["memory"].update({p: {"peak_bytes": 1} for p in ("load", "train", "eval")})
    record["throughput"] = {"tokens_per_s": 1.0, "mfu": mfu, "mfu_flag": flag}
    return record
