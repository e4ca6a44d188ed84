"""Each memory term against an independent hand computation on the tiny config."""

import pytest

from bench.plan import activations, estimate, presets, terms
from bench.util.errors import BenchError

TINY = presets.load("tiny-llama")[1]          # h64 i128 L2 heads4 kv4 (head_dim 16) vocab49152 tied
N = 3_227_968                                  # its parameter count (test_plan_params)
LINEAR = 2 * (4 * 64 * 64 + 3 * 64 * 128)      # 81,920 quantisable weights
HEAD = 49152 * 64                              # the (tied) embedding / lm_head
T = 32                                         # tokens: batch 2 x 16
BIAS = 16  # a padded batch's additive mask bias: seq elements per token and layer (no GQA here, so no repeat_kv)


def run(**kw):
    args = dict(config=TINY, method="full", seq_len=16, batch_size=2, grad_checkpointing=False,
                optimizer="adamw_torch", precision="fp32", device="cpu", lora_r=8)
    return estimate(**{**args, **kw})


def test_nf4_constants():
    dq = terms.nf4_bytes_per_param(double_quant=True) * 8 - 4
    plain = terms.nf4_bytes_per_param(double_quant=False) * 8 - 4
    assert plain == pytest.approx(0.5)
    assert dq == pytest.approx(0.127, abs=0.001)
    assert plain - dq == pytest.approx(0.373, abs=0.001)


def test_full_fp32_terms_by_hand():
    out = run()
    c = out["components"]
    assert c["weights"] == 4 * N
    assert c["optimizer_states"] == 8 * N                     # two fp32 states
    assert c["gradients"] == 4 * N
    # per layer (9h + 2kv + 4i) fp32 elements, kv = h here; final norm: fp32 input, output, lm_head input
    assert c["activations"] == T * (2 * 4 * (9 * 64 + 2 * 64 + 4 * 128 + BIAS) + 3 * 4 * 64)
    assert c["logits_and_loss"] == T * 49152 * 12               # fp32 log_softmax + its 2 fp32 grads
    held = run(keep_logits=True)["components"]["logits_and_loss"]
    assert held == T * 49152 * (4 + 12)                         # + the logits, if the loop holds them
    assert c["attention_mask"] == 2 * 16 * 16                   # padded: bool batch x seq x seq
    assert sum(out["terms"].values()) == out["total_bytes"]


def test_lora_bf16_saves_an_fp32_copy_of_each_adapters_input():
    c = run(method="lora", precision="bf16-true")["components"]
    # norms: fp32 input copy 4h each; q,k,v / o / gate,up / down each cast to fp32 per target;
    # SDPA q,k,v,out and gate, silu, up in bf16; lora_A outputs r fp32 per target
    per_layer = 2 * 4 * 64 + 4 * (3 * 64 + 64 + 2 * 64 + 128) + 2 * (2 * 64 + 2 * 64) + 2 * 3 * 128 + 7 * 8 * 4 \
        + 2 * BIAS
    assert c["activations"] == T * (2 * per_layer + 4 * 64)
    same_dtype = run(method="lora", precision="bf16-true", adapter_dtype="bfloat16")["components"]
    shared = 2 * 4 * 64 + 2 * (64 + 64 + 64 + 128) + 2 * (2 * 64 + 2 * 64) + 2 * 3 * 128 + 7 * 8 * 2 + 2 * BIAS
    assert same_dtype["activations"] == T * (2 * shared + 4 * 64)
    assert run(method="lora", precision="bf16-true", keep_logits=True)["components"]["logits_and_loss"] == \
        T * 49152 * (2 + 12)                                    # held logits in lm_head's bf16


def test_target_subset_and_dropout_change_what_is_saved():
    qv = run(method="lora", precision="bf16-true", target_modules=["q_proj", "v_proj"])["components"]
    per_layer = 2 * 4 * 64 + 4 * 2 * 64 + 2 * 256 + 2 * 3 * 128 + 2 * 8 * 4 + 2 * BIAS  # only q, v keep an input copy
    assert qv["activations"] == T * (2 * per_layer + 4 * 64)
    drop = run(method="lora", lora_dropout=0.05)["components"]         # fp32: a dropped copy + mask per target
    per_layer = 2 * 4 * 64 + 5 * (3 * 64 + 64 + 2 * 64 + 128) + 4 * 256 + 4 * 3 * 128 + 7 * 8 * 4 + 4 * BIAS
    assert drop["activations"] == T * (2 * per_layer + 4 * 64)


def test_qlora_weights_and_matched_dtypes():
    c = run(method="qlora", precision="bf16-true")["components"]
    assert c["weights_nf4"] == LINEAR // 2
    assert c["quant_constants"] == int(LINEAR * (8 / 64 + 32 / (64 * 256)) / 8)
    assert c["weights_unquantised"] == 2 * (N - LINEAR)         # no k-bit upcast: the policy's bf16
    lora = run(method="lora", precision="bf16-true")["components"]
    for key in ("activations", "logits_and_loss", "adapters", "optimizer_states"):
        assert c[key] == lora[key]                               # only the quantised linears differ
    up = run(method="qlora", precision="bf16-true", kbit_upcast=True)["components"]
    assert up["weights_unquantised"] == 4 * (N - LINEAR)
    assert up["activations"] > c["activations"]
    held = dict(method="qlora", precision="bf16-true", keep_logits=True)
    assert run(kbit_upcast=True, **held)["components"]["logits_and_loss"] == T * 49152 * 16   # fp32 lm_head
    assert run(**held)["components"]["logits_and_loss"] == T * 49152 * 14
    adapters = 2 * 8 * (4 * 128 + 3 * 192)                     # r*(in+out): 4 attn (64+64), 3 MLP (64+128)
    assert c["adapters"] == 4 * adapters and c["optimizer_states"] == 8 * adapters


def test_int8_and_optimizers():
    c = run(method="lora8")["components"]
    assert c["weights_int8"] == LINEAR
    assert c["quant_constants"] == 4 * 2 * (3 * 64 + 64 + 2 * 128 + 64)   # fp32 scale per output row
    assert run(optimizer="adamw_8bit")["components"]["optimizer_states"] == int(N * (2 + 2 * 4 / 256))
    assert run(precision="bf16-true")["components"]["optimizer_states"] == 4 * N   # states follow the param dtype
    fused = run(device="cuda", optimizer="adamw_torch_fused")["components"]
    assert fused["optimizer_temporaries"] == 0
    assert run(device="cuda")["components"]["optimizer_temporaries"] == 4 * N    # foreach sqrt(exp_avg_sq)


def test_paged_state_is_its_own_figure():
    out = run(device="cuda", optimizer="paged_adamw", precision="bf16-true")
    assert out["paged_bytes"] == 8 * N and "optimizer_states" not in out["terms"]
    assert out["device_bytes"] == out["total_bytes"] + 8 * N + out["context_bytes"]
    on_cpu = run(optimizer="paged_adamw")                       # bnb falls back to plain memory on CPU
    assert on_cpu["paged_bytes"] == 0 and on_cpu["components"]["optimizer_states"] == 8 * N


def test_chunked_loss_compile_and_mixed_precision():
    bf16 = dict(precision="bf16-true", device="cuda")
    # eager: the loss's peak is in its forward, at the last chunk: every bf16 chunk (the model's output
    # list), 7 chunks' saved fp32 log_softmax, the last chunk's fp32 upcast and log_softmax (2 + 3.5 + 1
    # bytes per element); its backward holds every saved log_softmax and one chunk's two fp32 gradients
    # (4 + 1). Before: the backward's alone. Measured: tests/test_checkpointing_probe.py
    assert run(loss="chunked", **bf16)["components"]["logits_and_loss"] == \
        T * 49152 * 2 + T * 49152 * 4 * 7 // 8 + T * 49152 * 8 // 8
    assert activations.logits_bytes(TINY, tokens=T, logits_dtype=2, loss="chunked") == T * 49152 * (4 + 1)
    assert run(loss="chunked", compile=True, **bf16)["components"]["logits_and_loss"] == \
        T * 49152 * 2 + T * 49152 * 2 // 8  # every bf16 chunk saved + one chunk's bf16 gradient
    mixed = run(method="lora", precision="bf16-mixed", device="cuda")["components"]
    assert mixed["weights"] == 4 * N
    assert mixed["autocast_weight_copies"] == 2 * (LINEAR + HEAD)   # 16-bit casts saved for backward
    assert run(method="lora", precision="bf16-mixed", grad_checkpointing=True)["components"][
        "autocast_weight_copies"] == 2 * (LINEAR // 2 + HEAD)


def test_optimizer_in_backward_and_activation_offload():
    bf16 = dict(device="cuda", precision="bf16-true", grad_checkpointing=True)
    plain = run(**bf16)
    assert plain["components"]["optimizer_temporaries"] == 2 * N    # the foreach scratch, bf16
    oib = run(optimizer_in_backward=True, **bf16)
    assert oib["peak_at"] != "optimizer step" and "gradients" not in oib["components"]
    assert oib["components"]["gradients_in_flight"] == 2 * 2 * HEAD   # the largest grad + its scratch
    small = presets.load("smollm2-135m")[1]                            # 30 layers, h576
    kept = estimate(config=small, method="full", seq_len=16, batch_size=2, **bf16)["components"]["activations"]
    offloaded = estimate(config=small, method="full", seq_len=16, batch_size=2, activation_offload=True,
                         **bf16)["components"]["activations"]
    assert kept - offloaded == T * (30 - 2) * 2 * 576                 # 28 layer inputs moved to CPU


def test_checkpointing_and_sharding():
    plain, ckpt = run(), run(grad_checkpointing=True)
    layer = 4 * (9 * 64 + 2 * 64 + 4 * 128 + BIAS)
    assert ckpt["components"]["activations"] == T * (2 * 4 * 64 + layer + 3 * 4 * 64)
    assert ckpt["components"]["activations"] < plain["components"]["activations"]
    one, two = run(device="cuda"), run(gpus=2, device="cuda")
    assert two["components"]["weights"] == one["components"]["weights"] // 2
    assert two["components"]["activations"] == one["components"]["activations"]
    per_layer = (4 * 64 * 64 + 3 * 64 * 128 + 2 * 64) * 4
    assert two["components"]["fsdp_gathered"] == 2 * per_layer + (HEAD + 64) * 4 // 2
    assert two["components"]["fsdp_grad_buffer"] == per_layer + (HEAD + 64) * 4


def test_cuda_figures():
    out = run(device="cuda")
    assert out["device_bytes"] - out["total_bytes"] == out["context_bytes"] > 0
    assert out["allocated_bytes"] == out["total_bytes"] - out["terms"]["allocator"]
    assert "baseline" not in out["terms"]
    assert run(precision=None, compute_dtype="bfloat16")["policy"] == "bf16-true"   # the older setting still works


@pytest.mark.parametrize("kw,match", [
    ({"method": "prefix"}, "unknown method"),
    ({"seq_len": -1}, "sequence length"),
    ({"optimizer": "sgd"}, "unknown optimizer"),
    ({"device": "tpu"}, "unknown device"),
    ({"precision": "int4"}, "unknown precision"),
    ({"compute_dtype": "int4"}, "unknown compute dtype"),
    ({"loss": "focal"}, "unknown loss"),
    ({"target_modules": ["q_proj", "lm_head"]}, "unknown target module 'lm_head'.*valid choices: all-linear, q_proj"),
    ({"lora_alpha": 16}, "unknown planner option 'lora_alpha'"),
    ({"config": {"hidden_size": 8}}, "missing required field"),
])
def test_bad_input(kw, match):
    with pytest.raises(BenchError, match=match):
        run(**{"method": "lora", **kw} if "method" not in kw else kw)


def test_cpu_qlora_counts_dequantised_copies_only_when_they_are_fp32():
    # fp32: forward volume + two fp32 copies of every quantised weight (forward and backward);
    # bf16-true: the same run without them (measured: QLoRA's retention equals LoRA's in bf16)
    fp32, bf16 = run(method="qlora"), run(method="qlora", precision="bf16-true")
    lora32, lora16 = run(method="lora"), run(method="lora", precision="bf16-true")
    base32 = fp32["forward_volume_bytes"] - lora32["forward_volume_bytes"]
    assert base32 == 2 * LINEAR * 4
    assert bf16["forward_volume_bytes"] == lora16["forward_volume_bytes"]
    # with checkpointing the copies reuse one hole at any precision
    assert run(method="qlora", grad_checkpointing=True)["forward_volume_bytes"] == \
        run(method="lora", grad_checkpointing=True)["forward_volume_bytes"]
