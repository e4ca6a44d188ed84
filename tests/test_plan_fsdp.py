"""FSDP terms from how FSDP and bitsandbytes work (bench/plan/sharding.py), the checkpointed
backward's two phases, and the headroom an FSDP "fits" needs. Hand arithmetic on presets."""

import pytest

from bench.plan import estimate, grid as fit, frontier, params, predict, presets, sharding, terms
from bench.util.errors import BenchError

L70 = presets.load("llama-2-70b")[1]
TINY = presets.load("tiny-llama")[1]
QLORA70 = dict(config=L70, method="qlora", seq_len=512, batch_size=1, grad_checkpointing=True,
               precision="bf16-true", device="cuda", optimizer="adamw_torch", lora_r=8)


def test_quant_state_stays_whole_on_every_rank():
    """Before: 4-bit constants were divided by the GPUs (0.55 GB per GPU short for 70B on 2)."""
    one, two = estimate(**QLORA70), estimate(**QLORA70, gpus=2)
    linear = params.counts(L70)["linear"]
    constants = int(linear * terms.nf4_bytes_per_param(double_quant=True) - linear * 0.5)
    assert one["components"]["quant_constants"] == two["components"]["quant_constants"] == constants
    assert two["components"]["weights_nf4"] == -(-int(linear * 0.5) // 2)        # the packed data is sharded
    assert constants > 0.5e9


def test_a_gathered_qlora_layer_is_its_packed_data_and_norms():
    two = estimate(**QLORA70, gpus=2)
    n = params.counts(L70)
    layer = n["linear"] // 80 * 0.5 + (n["norm"] - 8192) // 80 * 2 + params.lora_counts(L70, r=8)["params"] // 80 * 4
    root = (n["embed"] + n["lm_head"] + 8192) * 2
    assert two["components"]["fsdp_gathered"] == 2 * int(layer) + root - root // 2


def test_stream_pool_is_reserved_not_allocated_and_nccl_is_device_only():
    one, two = estimate(**QLORA70), estimate(**QLORA70, gpus=2)
    assert "fsdp_stream_pool" not in one["terms"] and one["nccl_bytes"] == 0 and one["headroom_bytes"] == 0
    assert two["terms"]["fsdp_stream_pool"] > 0
    assert two["allocated_bytes"] == two["total_bytes"] - sum(two["terms"][k] for k in
                                                                ("allocator", "fsdp_stream_pool", "allocator_phases")
                                                                if k in two["terms"])
    assert two["device_bytes"] == two["total_bytes"] + two["paged_bytes"] + two["context_bytes"] + predict.NCCL_BYTES
    assert two["headroom_bytes"] == int(predict.FSDP_HEADROOM * two["device_bytes"])


def test_fsdp_fits_only_with_the_stated_headroom():
    """llama-2-70b QLoRA on 2 GPUs at 512 x 1: predicted under 24 GB, but not with 15% to spare."""
    two = estimate(**QLORA70, gpus=2)
    budget = 24 * 10**9
    assert two["device_bytes"] < budget < predict.needed_bytes(two)
    options = {k: v for k, v in QLORA70.items() if k not in ("config", "method", "seq_len", "batch_size",
                                                                 "grad_checkpointing")}
    (row,) = fit.grid(models=[("llama-2-70b", L70)], methods=["qlora"], seq_lens=[512], batch_sizes=[1],
                      checkpointing=[True], memory_bytes=budget, options=dict(options, gpus=2))
    assert not row["fits"] and row["headroom_required_bytes"] == two["headroom_bytes"]
    got = frontier.row(label="llama-2-70b", config=L70, method="qlora", memory_bytes=budget, seq_lens=[512],
                       options=dict(options, gpus=2, grad_checkpointing=True))
    assert got["max_batch"][512] == 0


def test_checkpointing_splits_the_start_of_backward_into_two_phases():
    """The loss's working set is gone before backward reaches the last layer and recomputes it:
    the live peak is the larger phase, not their sum (before: the sum, as allocated too)."""
    kw = dict(config=TINY, method="lora", seq_len=16, batch_size=2, precision="bf16-true", device="cuda",
              optimizer="adamw_torch", lora_r=8, grad_checkpointing=True)
    est = estimate(**kw)
    T, h = 32, 64
    loss = est["components"]["logits_and_loss"]
    kept_and_final = T * (2 * 2 * h + 4 * h)                     # 2 layer inputs in bf16 + the final norm's fp32 input
    recompute = est["components"]["activations"] - kept_and_final  # one layer's saved tensors
    hidden = est["components"]["hidden_gradient"]
    assert hidden == T * h * 2 and recompute > 0
    assert est["peak_at"] == "backward start" and est["terms"]["activations"] == kept_and_final
    # reserved keeps both phases' blocks (no reuse counted): the recomputed layer and the hidden gradient
    assert est["terms"]["allocator_phases"] == recompute + hidden
    assert est["allocated_bytes"] == sum(v for k, v in est["terms"].items()
                                         if k not in ("allocator", "allocator_phases"))
    assert loss > recompute


def test_full_fine_tuning_counts_lm_heads_gradient_in_the_loss_phase():
    est = estimate(config=TINY, method="full", seq_len=16, batch_size=2, precision="bf16-true", device="cuda",
                   optimizer="adamw_torch")
    assert est["components"]["head_gradient"] == 49152 * 64 * 2
    lora = estimate(config=TINY, method="lora", seq_len=16, batch_size=2, precision="bf16-true", device="cuda")
    assert "head_gradient" not in lora["components"]


@pytest.mark.parametrize("offload", ["all"])
def test_cpu_offload_keeps_the_quant_state_on_the_device(offload):
    est = estimate(**QLORA70, offload=offload)
    assert est["components"]["weights_nf4"] == 0 and est["components"]["quant_constants"] > 0.5e9


def test_under_fsdp_lm_heads_gradient_is_counted_once_in_the_roots():
    kw = dict(config=L70, method="full", seq_len=2048, batch_size=1, grad_checkpointing=True, precision="bf16-true",
              device="cuda", packing=True)
    sharded = estimate(**kw, gpus=8, offload="all")
    n = params.counts(L70)
    assert "head_gradient" not in sharded["terms"]
    assert sharded["components"]["fsdp_grad_buffer"] >= (n["embed"] + n["lm_head"]) * 2


def test_fsdp_terms_follow_the_backward_moment():
    """What FSDP holds depends on where backward is. While the loss runs backward, the root's
    pre-backward hook has prefetched the last layer (one gathered) and no layer has a gradient yet;
    while a layer runs backward, it and the one it prefetches are gathered and its unsharded gradient
    exists; at the first layer nothing is left to prefetch. A trained root's unsharded gradient holds
    only lm_head's and the final norm's part until the embedding's, made last, completes it. Before,
    every moment had two layers, a layer's gradient and the whole root's gradient."""
    unit = dict(layer_bytes=1000, root_bytes=600, layer_grad_bytes=100, root_grad_bytes=60, head_grad_bytes=25,
                head_bytes=250, embed_bytes=340, embed_grad_bytes=34)
    moments = {"backward start": {"head_gradient": 24}, "layer recompute": {}, "backward end": {"gradients": 8000}}
    sharding.apply({"weights": 4000}, moments, gpus=2, offload="none", unit=unit, notes=[])
    root = 600 - 600 // 2                                   # the rank's own shard is in `weights`
    assert moments["backward start"] == {"fsdp_gathered": 1000 + root, "fsdp_grad_buffer": 25}
    assert moments["layer recompute"] == {"fsdp_gathered": 2 * 1000 + root, "fsdp_grad_buffer": 100 + 25}
    assert moments["backward end"] == {"gradients": 4000, "fsdp_gathered": 1000 + root, "fsdp_grad_buffer": 100 + 60}


def test_llama_70b_full_offloaded_holds_lm_heads_gradient_not_the_embeddings_until_the_end():
    """llama-2-70b, full, 8 GPUs, CPU offload, checkpointing: at the layer recompute the root's
    unsharded gradient is lm_head's and the final norm's, (32000 x 8192 + 8192) x 2 bytes, beside
    one decoder layer's; two layers and the whole root (its shard is on the CPU) are gathered."""
    est = estimate(config=L70, method="full", seq_len=2048, batch_size=1, grad_checkpointing=True,
                   precision="bf16-true", device="cuda", packing=True, gpus=8, offload="all")
    n = params.counts(L70)
    layer = (n["total"] - n["embed"] - n["lm_head"] - 8192) // 80 * 2
    assert est["peak_at"] == "layer recompute"
    assert est["terms"]["fsdp_grad_buffer"] == layer + (32000 * 8192 + 8192) * 2
    assert est["terms"]["fsdp_gathered"] == 2 * layer + (2 * 32000 * 8192 + 8192) * 2


def test_without_checkpointing_fsdp_prices_the_last_layers_backward():
    """Without checkpointing, the last layer's backward (every saved tensor, two gathered layers and
    its gradient) is a moment of its own under FSDP; on one device it is never above the loss phase."""
    kw = dict(config=L70, method="full", seq_len=512, batch_size=1, precision="bf16-true", device="cuda",
              packing=True)
    assert "hidden_gradient" not in estimate(**kw)["components"]     # one device: no such moment
    sharded = estimate(**kw, gpus=8, offload="all")
    n = params.counts(L70)
    layer = (n["total"] - n["embed"] - n["lm_head"] - 8192) // 80 * 2
    assert sharded["peak_at"] == "last layer"
    assert sharded["terms"]["fsdp_gathered"] == 2 * layer + (2 * 32000 * 8192 + 8192) * 2
    assert sharded["terms"]["hidden_gradient"] == 512 * 8192 * 2


def test_split_root_gathers_lm_head_and_the_embedding_only_around_their_own_backward():
    """torchtune's 70B full config shards tok_embeddings and output as units of their own (FSDP2,
    custom_sharded_layers): each is resharded after forward, so lm_head is gathered (and its gradient
    made) only while the loss runs backward and the embedding only at the end; between, no root."""
    unit = dict(layer_bytes=1000, root_bytes=600, layer_grad_bytes=100, root_grad_bytes=60, head_grad_bytes=25,
                head_bytes=250, embed_bytes=340, embed_grad_bytes=34)
    moments = {"backward start": {}, "layer recompute": {}, "backward end": {}}
    sharding.apply({"weights": 4000}, moments, gpus=8, offload="all", unit=unit, notes=[], root="split")
    assert moments["backward start"] == {"fsdp_gathered": 1000 + 250, "fsdp_grad_buffer": 25}
    assert moments["layer recompute"] == {"fsdp_gathered": 2 * 1000, "fsdp_grad_buffer": 100}
    assert moments["backward end"] == {"fsdp_gathered": 1000 + 340, "fsdp_grad_buffer": 100 + 34}
    L3 = presets.load("llama-3-70b")[1]
    kw = dict(config=L3, method="full", seq_len=4096, batch_size=2, grad_checkpointing=True, precision="bf16-true",
              device="cuda", packing=True, gpus=8, offload="all", loss="chunked")
    whole, split = estimate(**kw), estimate(**kw, fsdp_root="split")
    n = params.counts(L3)
    layer = (n["total"] - n["embed"] - n["lm_head"] - 8192) // 80 * 2
    # components hold the layer recompute's terms (the last moment added)
    assert split["components"]["fsdp_gathered"] == 2 * layer and split["components"]["fsdp_grad_buffer"] == layer
    root, head_grad = (n["embed"] + n["lm_head"] + 8192) * 2, (n["lm_head"] + 8192) * 2
    assert whole["components"]["fsdp_gathered"] - split["components"]["fsdp_gathered"] == root   # 4.2 GB
    assert whole["components"]["fsdp_grad_buffer"] - split["components"]["fsdp_grad_buffer"] == head_grad
    assert split["allocated_bytes"] < whole["allocated_bytes"]
    with pytest.raises(BenchError, match="fsdp root"):
        estimate(**kw, fsdp_root="apart")
