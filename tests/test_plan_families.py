"""The planner prices each dense family it accepts exactly and refuses what it cannot price.

tests/fixtures/configs/ holds real public config.json files (Hugging Face model repos, as
published): the expected counts are computed independently here, by building each model with
transformers on the meta device (no memory, exact shapes) and summing its parameters; the model
cards' totals are written beside them as a second check. LoRA counts are checked against peft on
scaled-down copies of each family's config, built for real on the CPU."""

import json
from pathlib import Path

import pytest
import torch
import transformers

import bench.cli as cli
from bench.plan import estimate, params, presets
from bench.util.errors import BenchError

CONFIGS = Path(__file__).parent / "fixtures" / "configs"
# total parameters as the model cards / release notes state them (tied embeddings counted once)
DENSE = {
    "gemma-2b": 2_506_172_416, "gemma-7b": 8_537_680_896, "gemma-2-9b": 9_241_705_984, "gemma-3-1b": 999_885_952,
    "qwen3-0.6b": 596_049_920, "qwen3-8b": 8_190_735_360, "phi-3-mini-4k": 3_821_079_552,
    "mistral-nemo-12b": 12_247_782_400, "qwen2-7b": 7_615_616_512,
}
MOE = ["mixtral-8x7b", "qwen1.5-moe-a2.7b", "deepseek-v2-lite"]


def raw(name: str) -> dict:
    return json.loads((CONFIGS / f"{name}.json").read_text())


def built(config: dict, *, device: str = "meta"):
    cfg = transformers.AutoConfig.for_model(**config)
    with torch.device(device):
        return transformers.AutoModelForCausalLM.from_config(cfg)


@pytest.mark.parametrize("name", sorted(DENSE))
def test_parameter_count_is_exact(name):
    expected = sum(p.numel() for p in built(raw(name)).parameters())  # tied weights appear once
    got = params.counts(presets.validate(raw(name)))["total"]
    assert got == expected == DENSE[name]


def small(name: str) -> dict:
    """The family's config scaled down (GQA kept where the original has it), for a real CPU build."""
    config = raw(name)
    kv = 1 if config["num_key_value_heads"] < config["num_attention_heads"] else 4
    return dict(config, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=kv, head_dim=24, vocab_size=256, max_position_embeddings=128, pad_token_id=0)


@pytest.mark.parametrize("name", sorted(DENSE))
def test_lora_count_matches_peft(name):
    from peft import LoraConfig, get_peft_model

    config = small(name)
    model = get_peft_model(built(config, device="cpu"), LoraConfig(r=4, target_modules="all-linear"))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if hasattr(m, "lora_A")}
    assert names == {lin[0] for lin in params.linears(presets.validate(config))}
    assert params.lora_counts(presets.validate(config), r=4)["params"] == trainable


def test_phi3_fused_projections_count_as_two_modules_fewer():
    """Same weights as the unfused layout, but LoRA on qkv_proj is r*(h + q+2kv), not three adapters."""
    phi3 = presets.validate(raw("phi-3-mini-4k"))
    unfused = dict(phi3, model_type="llama")
    assert params.counts(phi3)["total"] == params.counts(unfused)["total"]
    assert params.lora_counts(phi3, r=8)["params"] == 32 * 8 * ((3072 + 3 * 3072) + 2 * 3072 + (3072 + 2 * 8192)
                                                                + (8192 + 3072))
    assert params.lora_counts(phi3, r=8)["params"] < params.lora_counts(unfused, r=8)["params"]


@pytest.mark.parametrize("name", MOE)
def test_mixture_of_experts_is_refused(name):
    with pytest.raises(BenchError, match="mixture-of-experts.*dense decoders only: llama"):
        presets.validate(raw(name))
    with pytest.raises(BenchError, match="mixture-of-experts"):
        estimate(config=raw(name), method="qlora", seq_len=512, batch_size=1)


@pytest.mark.parametrize("name", ["mixtral-8x7b", "gemma-2-9b"])
def test_plan_on_a_config_file(name, capsys, monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", {"plan": "bench.plan.command"})
    rc = cli.main(["plan", "--memory", "24GB", "--models", str(CONFIGS / f"{name}.json"), "--methods", "qlora",
                   "--seq-len", "512", "--batch-size", "1"])
    err = capsys.readouterr().err
    if name in MOE:
        assert rc == 2 and err.startswith("ftbench: error:") and err.count("\n") == 1 and "mixtral" in err
    else:
        assert rc == 0 and err == ""


def test_an_unknown_architecture_is_refused_and_a_multimodal_one_says_why():
    with pytest.raises(BenchError, match="model_type 'gpt_neox' is not one the planner prices; valid choices: llama"):
        presets.validate(dict(raw("qwen2-7b"), model_type="gpt_neox"))
    with pytest.raises(BenchError, match="multimodal wrapper"):
        presets.validate({"model_type": "gemma3", "text_config": raw("gemma-3-1b"), "vision_config": {}})


def test_a_mixture_of_experts_run_keeps_its_figures_and_says_why_there_is_no_estimate(tmp_path, tiny_path):
    """End to end on a tiny Mixtral: the run is ok with its measured peak; the estimate is absent
    with the planner's one-line reason (before: a dense-Llama price of the wrong model)."""
    import shutil

    from tests.conftest import run_cli

    model = tmp_path / "tiny-mixtral"
    model.mkdir()
    for f in tiny_path.iterdir():
        if f.name.startswith("tokenizer") or f.suffix == ".jinja":
            shutil.copy(f, model / f.name)
    cfg = transformers.MixtralConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                                     num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
                                     vocab_size=49152, max_position_embeddings=256)
    torch.manual_seed(0)
    transformers.AutoModelForCausalLM.from_config(cfg).save_pretrained(model)
    done = run_cli("--profile", "smoke", "--models", model, "--methods", "full", "--no-eval", "--no-report",
                   "--steps", "3", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    (record,) = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert record["status"] == "ok" and record["memory"]["train"]["peak_bytes"] > 0
    assert set(record["estimate"]) == {"error"} and "mixture-of-experts" in record["estimate"]["error"]
