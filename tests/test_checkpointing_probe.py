"""What checkpointing and torchtune's eager chunked loss keep alive, measured on the CPU on a small
GQA Llama in bf16 with LoRA (scripts/probe_checkpointing.py, which docs/plan.md runs on the 1B
shape), against the planner's terms; and the live-bytes tracker (bench.measure.live) by hand."""

import json
import re
import sys
from pathlib import Path

import pytest
import torch
import transformers

from bench.measure.live import LiveBytes
from bench.plan import activations, estimate, presets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import probe_checkpointing as probe  # noqa: E402

SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=8192, max_position_embeddings=256, tie_word_embeddings=True)
T = 64


def test_live_bytes_by_hand():
    """y = relu(2x) keeps y (4 MB); backward makes y's gradient, relu's and x.grad (4 MB each) while
    y is still alive: 12 MB at the peak, y and x.grad after (plus a few scalars)."""
    x = torch.randn(1000, 1000, requires_grad=True)
    live = LiveBytes()
    with live.track():
        with live.phase("forward"):
            y = (x * 2).relu()
            z = y.sum()
        with live.phase("backward"):
            z.backward()
    assert 12_000_000 <= live.peak() <= 12_000_000 + 64 and live.peak("backward") == live.peak()
    assert 8_000_000 <= live.peak("forward") <= 8_000_000 + 64   # 2x and y at once, before 2x is freed
    assert 4_000_000 <= live.at_end("forward") <= 4_000_000 + 64
    with pytest.raises(KeyError):
        live.peak("optimizer")


@pytest.fixture(scope="module")
def model():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(**SHAPE, attn_implementation="sdpa")
    base = transformers.AutoModelForCausalLM.from_config(cfg).to(torch.bfloat16)
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(base, lora).train()


def _case(model, *, ckpt, loss):
    probe.set_checkpointing(model, ckpt)
    ids = torch.randint(3, SHAPE["vocab_size"], (1, T), generator=torch.Generator().manual_seed(0))
    config = presets.validate(dict(SHAPE, head_dim=16, model_type="llama"))
    return probe.step(model, ids, loss=loss), probe.predicted(config, tokens=T, ckpt=ckpt, loss=loss)


def test_checkpointing_saves_each_layers_input_and_the_final_norms_fp32_input(model):
    """With checkpointing autograd keeps, of the decoder, only each layer's bf16 input and the
    final norm's fp32 copy; plus cross-entropy's fp32 log_softmax: the planner's terms, exactly, up
    to the labels and a few per-token scalars (under 1 KiB here)."""
    measured, predicted = _case(model, ckpt=True, loss="standard")
    by_shape = measured["saved_by_shape"]
    assert by_shape["(1, 64, 64) bfloat16"] == 2 * T * 64 * 2                # 2 layer inputs
    assert by_shape["(1, 64, 64) float32"] == T * 64 * 4                     # the final norm's upcast
    assert by_shape["(64, 8192) float32"] == T * 8192 * 4                    # the saved log_softmax
    assert 0 <= measured["saved"] - predicted["saved"] < 1024


def test_eager_chunked_loss_peaks_in_its_forward(model):
    """torchtune's eager CEWithChunkedOutputLoss: while the loss loops over the chunks the model's
    whole bf16 output list is alive beside the saved fp32 log_softmax, so the loss's forward (2 + 3.5
    + 1 bytes per logit) is above its backward (4 + 1). The planner's loss_forward_bytes is the
    measured forward peak and logits_bytes the backward's, each within 1%."""
    measured, predicted = _case(model, ckpt=True, loss="chunked")
    config = presets.validate(dict(SHAPE, head_dim=16, model_type="llama"))
    est = estimate(config=config, method="lora", seq_len=T, batch_size=1, precision="bf16-true", device="cuda",
                   lora_r=8, grad_checkpointing=True, packing=True, loss="chunked")
    # the planner's loss phase (before: the backward's 4 + 1 bytes per logit, 23% short here)
    assert max(measured["loss_fwd"], measured["loss_bwd"]) == pytest.approx(
        predicted["kept"] + est["components"]["logits_and_loss"], rel=0.01)
    assert measured["loss_fwd"] == pytest.approx(predicted["loss_fwd"], rel=0.01)
    assert measured["loss_bwd"] == pytest.approx(predicted["loss_bwd"], rel=0.01)
    assert measured["loss_fwd"] > measured["loss_bwd"]
    per = T * SHAPE["vocab_size"]
    assert activations.loss_forward_bytes(SHAPE, tokens=T, logits_dtype=2, loss="chunked") == \
        per * 2 + per * 4 * 7 // 8 + per


def test_recomputed_layer_is_alive_with_the_kept_inputs_not_with_the_loss(model):
    """Backward reaches the last layer after the loss's working set is freed: the layer phase holds the
    kept inputs, one recomputed layer and the gradients flowing through it, far below the loss phase."""
    measured, predicted = _case(model, ckpt=True, loss="standard")
    assert measured["layers"] < measured["loss_bwd"] / 4
    assert measured["loss_bwd"] == pytest.approx(predicted["loss_bwd"], rel=0.01)


def test_docs_table_is_the_committed_records_against_the_planner_now():
    """docs/plan.md's table is the committed 1B-shape records with the planner's terms recomputed:
    a change to a term shows up as a diff here."""
    root = Path(__file__).resolve().parents[1]
    records = [json.loads(f.read_text()) for f in sorted((root / "reports/samples/checkpointing-probe").glob("*.json"))]
    assert {r["rows"][0]["tokens"] for r in records} == {256, 512}
    docs = (root / "docs/plan.md").read_text()
    block = re.search(r"<!-- ckpt-probe:start -->\n(.*?)\n<!-- ckpt-probe:end -->", docs, re.S)
    assert block and block.group(1).strip() == probe.table(records).strip()
