"""Parameter counts from configs, against published totals and hand arithmetic."""

import json

import pytest

from bench.plan import params, presets
from bench.util.errors import BenchError

# Published or measured totals (model cards / `sum(p.numel())` on the real checkpoints).
KNOWN = {
    "smollm2-135m": 134_515_008,      # params.total of the full run in reports/samples/cpu-default/results.jsonl
    "llama-7b": 6_738_415_616,        # LLaMA-1 7B
    "llama-2-70b": 68_976_648_192,
    "mistral-7b": 7_241_732_096,
    "llama-3-8b": 8_030_261_248,
    "qwen2.5-0.5b": 494_032_768,      # model card 0.49B
}


@pytest.mark.parametrize("name,total", sorted(KNOWN.items()))
def test_known_totals(name, total):
    assert params.counts(presets.load(name)[1])["total"] == total


def test_tiny_llama_by_hand():
    # h64 i128 L2, 4 heads = 4 kv heads, vocab 49152, tied: attention 4*64*64, MLP 3*64*128, 2 norms
    per_layer = 4 * 64 * 64 + 3 * 64 * 128 + 2 * 64
    assert params.counts(presets.load("tiny-llama")[1])["total"] == 2 * per_layer + 49152 * 64 + 64


def test_qwen_bias_counted():
    cfg = presets.load("qwen2.5-0.5b")[1]
    # q, k, v carry bias (896 + 128 + 128 per layer), o_proj and MLP do not
    assert params.counts(cfg)["bias"] == 24 * (896 + 128 + 128)


def test_lora_counts_by_hand():
    cfg = presets.load("smollm2-135m")[1]
    # r*(in+out): q 576+576, k,v 576+192, o 576+576, gate,up 576+1536, down 1536+576
    per_layer = 8 * (1152 + 768 + 768 + 1152 + 3 * 2112)
    assert params.lora_counts(cfg, r=8)["params"] == 30 * per_layer == 2_442_240
    dora = params.lora_counts(cfg, r=8, dora=True)["params"]
    assert dora - 30 * per_layer == 30 * (576 + 192 + 192 + 576 + 1536 * 2 + 576)
    assert params.lora_counts(cfg, r=8, targets=["q_proj", "v_proj"])["params"] == 30 * 8 * (1152 + 768)


def test_llama_3_2_3b_matches_peft_method_comparison():
    # num_total_params of huggingface/peft method_comparison/MetaMathQA/results/
    # full-finetuning--llama-3.2-3B-lr_0.00001.json (tied embeddings counted once)
    assert params.counts(presets.load("llama-3.2-3b")[1])["total"] == 3_212_749_824


def test_every_preset_validates():
    names = presets.preset_names()
    assert len(names) >= 21
    for name in names:
        assert params.counts(presets.load(name)[1])["total"] > 0


def test_config_path_and_missing_fields(tmp_path):
    good = tmp_path / "m" / "config.json"
    good.parent.mkdir()
    good.write_text(json.dumps(presets.load("tiny-llama")[1]))
    label, cfg = presets.load(str(good.parent))
    assert label == "m" and cfg["hidden_size"] == 64
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hidden_size": 64}))
    with pytest.raises(BenchError, match="missing required field"):
        presets.load(str(bad))
    with pytest.raises(BenchError, match="unknown model preset 'nope'"):
        presets.load("nope")


def test_full_hf_config_with_null_head_dim():
    # a real config.json carries many more fields; head_dim may be null
    cfg = dict(presets.load("mistral-7b")[1], head_dim=None, rope_theta=10000.0, architectures=["X"])
    assert params.counts(presets.validate(cfg))["total"] == 7_241_732_096
