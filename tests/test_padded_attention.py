"""Padded batches with grouped K/V heads: what SDPA saves beyond a packed batch, measured with the
saved-tensor probe (bench.measure.saved) on a small GQA Llama on the CPU, and the planner's price
of it (bench.plan.activations.padded_attention_bytes).

With a padding mask transformers' SDPA path repeats K and V to the query heads (repeat_kv) and
SDPA saves those copies; and the boolean mask becomes an additive bias, saved by every call. On
CUDA the memory-efficient kernel takes the mask the same way (flash attention takes none);
measured here on the CPU only."""

import pytest
import torch
import transformers

from bench.measure.saved import SavedTensors
from bench.plan import activations, estimate

B, S = 2, 64
SHAPE = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=8,
             num_key_value_heads=2, vocab_size=512, max_position_embeddings=512)


def saved(model, mask):
    ids = torch.randint(0, 512, (B, S), generator=torch.Generator().manual_seed(0))
    probe = SavedTensors(model)
    with probe.probe():
        out = model(input_ids=ids, attention_mask=mask, labels=ids)
    out.loss.backward()
    return probe


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(**SHAPE, attn_implementation="sdpa")
    return transformers.AutoModelForCausalLM.from_config(cfg)


def test_padding_costs_the_repeated_kv_and_a_bias_per_layer(model):
    ones = torch.ones(B, S, dtype=torch.long)
    padded = ones.clone()
    padded[1, -16:] = 0
    plain, masked = saved(model, ones), saved(model, padded)   # an all-ones mask is dropped: no mask
    config = dict(SHAPE, head_dim=32)
    per_token = activations.padded_attention_bytes(config, seq_len=S, act=4)   # fp32
    assert masked.bytes() - plain.bytes() == SHAPE["num_hidden_layers"] * B * S * per_token
    # by name: q/out stay, k/v (2 kv heads) become 8-head copies, one B x 1 x S x S bias per layer
    grew = {k: masked.by_shape().get(k, 0) - plain.by_shape().get(k, 0)
            for k in set(plain.by_shape()) | set(masked.by_shape())}
    assert grew[((B, 1, S, S), "float32")] == 2 * B * S * S * 4
    assert grew[((B, 2, S, 32), "float32")] == -2 * 2 * B * 2 * S * 32 * 4
    assert grew[((B, 8, S, 32), "float32")] == 2 * 2 * B * 8 * S * 32 * 4


def test_the_planner_prices_a_padded_batch_above_a_packed_one():
    """Before, packed and padded differed only by the boolean mask (batch x seq^2 bytes)."""
    config = dict(SHAPE, head_dim=32, model_type="llama", tie_word_embeddings=False)
    kw = dict(config=config, method="full", seq_len=S, batch_size=B, precision="fp32", device="cuda")
    packed, padded = estimate(**kw, packing=True), estimate(**kw, packing=False)
    extra = padded["components"]["activations"] - packed["components"]["activations"]
    assert extra == SHAPE["num_hidden_layers"] * B * S * activations.padded_attention_bytes(config, seq_len=S, act=4)
    assert padded["components"]["attention_mask"] == B * S * S


@pytest.mark.parametrize("dtype, act", [(torch.float32, 4), (torch.bfloat16, 2)])
def test_gemma2_eager_attention_saves_its_score_matrices(dtype, act):
    """transformers' Gemma2 runs eager attention (soft-capped scores; no SDPA path): the part of
    what it saves that grows with seq^2, measured as saved(2S) - 2 saved(S), is the planner's
    score term (8 bytes per element in both dtypes), up to the few constant tensors (norm weights)
    that the subtraction counts once negatively."""
    torch.manual_seed(0)
    shape = dict(SHAPE, num_attention_heads=4, head_dim=32, hidden_size=128, intermediate_size=256)
    cfg = transformers.Gemma2Config(**shape, pad_token_id=0, sliding_window=4096)
    model = transformers.AutoModelForCausalLM.from_config(cfg).to(dtype)
    assert model.config._attn_implementation == "eager"

    def total(seq):
        ids = torch.randint(1, 512, (B, seq), generator=torch.Generator().manual_seed(0))
        probe = SavedTensors(model)
        with probe.probe():
            out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        model.zero_grad(set_to_none=True)
        return probe.bytes()

    quadratic = total(2 * S) - 2 * total(S)
    config = dict(shape, model_type="gemma2", attn_logit_softcapping=cfg.attn_logit_softcapping)
    per_token = lambda seq: activations.eager_attention_bytes(config, seq_len=seq, act=act)  # noqa: E731
    predicted = SHAPE["num_hidden_layers"] * (B * 2 * S * per_token(2 * S) - 2 * B * S * per_token(S))
    assert predicted == SHAPE["num_hidden_layers"] * B * 4 * 8 * 2 * S * S
    assert 0 <= predicted - quadratic <= 8 * 1024   # the constants: a few hidden-size vectors
