"""Each memory term against an independent hand computation on the tiny config."""

import pytest

from bench.errors import BenchError
from bench.plan import estimate, presets, terms

TINY = presets.load("tiny-llama")[1]          # h64 i128 L2 heads4 kv4 vocab49152 tied
N = 3_227_968                                  # its parameter count (test_plan_params)
LINEAR = 2 * (4 * 64 * 64 + 3 * 64 * 128)      # 81,920 quantisable weights


def run(**kw):
    args = dict(config=TINY, method="full", seq_len=16, batch_size=2, grad_checkpointing=False,
                optimizer="adamw_torch", compute_dtype="float32", device="cpu", lora_r=8)
    return estimate(**{**args, **kw})


def test_nf4_constants():
    dq = terms.nf4_bytes_per_param(double_quant=True) * 8 - 4
    plain = terms.nf4_bytes_per_param(double_quant=False) * 8 - 4
    assert plain == pytest.approx(0.5)
    assert dq == pytest.approx(0.127, abs=0.001)
    assert plain - dq == pytest.approx(0.373, abs=0.001)


def test_full_terms_by_hand():
    out = run()
    c = out["components"]
    assert c["weights"] == 4 * N
    assert c["optimizer_states"] == 8 * N                     # two fp32 states
    assert c["gradients"] == 4 * N
    # 32 tokens x (2 layers x (9h + 2kv + 4i) + final norm 3h) x 4 bytes, kv = h here
    assert c["activations"] == 32 * (2 * (9 * 64 + 2 * 64 + 4 * 128) + 3 * 64) * 4
    assert c["logits_and_loss"] == 16 * 32 * 49152
    assert sum(out["terms"].values()) == out["total_bytes"]


def test_qlora_weights_by_hand():
    c = run(method="qlora")["components"]
    assert c["weights_nf4"] == LINEAR // 2
    assert c["quant_constants"] == int(LINEAR * (8 / 64 + 32 / (64 * 256)) / 8)
    assert c["weights_unquantised"] == 4 * (N - LINEAR)
    lora = 2 * 8 * (4 * 128 + 3 * 192)                        # r*(in+out): 4 attn (64+64), 3 MLP (64+128)
    assert c["adapters"] == 4 * lora
    assert c["optimizer_states"] == 8 * lora
    no_dq = run(method="qlora", double_quant=False)["components"]["quant_constants"]
    assert no_dq == LINEAR * 4 // 64


def test_int8_and_optimizers():
    c = run(method="lora8")["components"]
    assert c["weights_int8"] == LINEAR
    assert c["quant_constants"] == 4 * 2 * (3 * 64 + 64 + 2 * 128 + 64)   # fp32 scale per output row
    eight = run(optimizer="adamw_8bit")["components"]["optimizer_states"]
    assert eight == int(N * (2 + 2 * 4 / 256))
    bf16 = run(compute_dtype="bfloat16")["components"]
    assert bf16["optimizer_states"] == 4 * N                  # torch AdamW states follow the param dtype
    assert run(optimizer="paged_adamw", compute_dtype="bfloat16")["components"]["optimizer_states"] == 8 * N


def test_checkpointing_and_sharding():
    plain, ckpt = run(), run(grad_checkpointing=True)
    # checkpointing keeps each layer's input (h) plus one recomputed layer
    assert ckpt["components"]["activations"] == 32 * (2 * 64 + (9 * 64 + 2 * 64 + 4 * 128) + 3 * 64) * 4
    assert ckpt["components"]["activations"] < plain["components"]["activations"]
    two = run(gpus=2, device="cuda")
    one = run(device="cuda")
    assert two["components"]["weights"] == one["components"]["weights"] // 2
    assert two["components"]["activations"] == one["components"]["activations"]


def test_cuda_context_outside_total():
    out = run(device="cuda")
    assert out["device_bytes"] - out["total_bytes"] == out["context_bytes"] > 0
    assert "baseline" not in out["terms"]


@pytest.mark.parametrize("kw,match", [
    ({"method": "prefix"}, "unknown method"),
    ({"seq_len": -1}, "sequence length"),
    ({"optimizer": "sgd"}, "unknown optimizer"),
    ({"device": "tpu"}, "unknown device"),
    ({"compute_dtype": "int4"}, "unknown compute dtype"),
    ({"config": {"hidden_size": 8}}, "missing required field"),
])
def test_bad_input(kw, match):
    with pytest.raises(BenchError, match=match):
        run(**kw)


def test_lora_dropout_adds_each_targets_dropped_input_and_mask():

    from bench.plan import estimate
    from bench.plan.presets import load

    config = load("smollm2-135m")[1]
    common = dict(config=config, method="lora", seq_len=128, batch_size=4, grad_checkpointing=False,
                  optimizer="adamw_torch", compute_dtype="float32", device="cpu", lora_r=8)
    without = estimate(**common, lora_dropout=0.0)
    with_dropout = estimate(**common, lora_dropout=0.05)
    # hand count: 30 layers x (q,k,v,gate,up take 576 inputs; o_proj 576; down_proj 1536)
    in_features = 30 * (576 * 6 + 1536)
    assert with_dropout["terms"]["lora_dropout"] == 512 * in_features * (4 + 1)
    assert "lora_dropout" not in without["terms"]
    assert with_dropout["total_bytes"] > without["total_bytes"] + with_dropout["terms"]["lora_dropout"]
