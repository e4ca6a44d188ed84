"""Predictions against published figures (docs/plan.md explains each comparison).

Assumed setting, as in the QLoRA paper's fit claims: batch 1, 512 tokens, gradient
checkpointing, bf16 compute, paged 32-bit AdamW, LoRA r=8 on all linear layers, one GPU.
"""

import pytest

from bench.plan import estimate, presets
from bench.plan.predict import weight_terms

GB = 1e9
QLORA_SETTING = dict(seq_len=512, batch_size=1, grad_checkpointing=True, compute_dtype="bfloat16",
                     device="cuda", lora_r=8, optimizer="paged_adamw")


def need(name, method, **kw):
    return estimate(config=presets.load(name)[1], method=method, **{**QLORA_SETTING, **kw})["device_bytes"]


def test_qlora_65b_fits_48gb():
    assert need("llama-65b", "qlora") <= 48 * GB


def test_qlora_33b_fits_24gb():
    assert need("llama-33b", "qlora") <= 24 * GB


def test_qlora_65b_does_not_fit_24gb_nor_16bit_lora_48gb():
    assert need("llama-65b", "qlora") > 24 * GB
    assert need("llama-65b", "lora") > 48 * GB


def test_full_16bit_65b_needs_more_than_780gb():
    # 16-bit weights and grads + fp32 Adam states = 12 bytes/param: 65.3B x 12 = 783 GB
    assert need("llama-65b", "full") > 780 * GB


def test_nf4_llama_7b_weights_below_paper_5048mb():
    """QLoRA §2: the 4-bit LLaMA-7B takes 5,048 MB. Our NF4+DQ weight term is smaller: decoder
    linears 6.476B x 4.127 bits = 3,341 MB, plus embeddings and lm_head unquantised (524 MB in
    bf16, 1,050 MB after prepare_model_for_kbit_training's fp32 upcast). The paper's figure is a
    measurement that also holds buffers we do not model; docs/plan.md discusses the gap."""
    w = weight_terms(presets.load("llama-7b")[1], method="qlora", compute_dtype="bfloat16")
    quantised = w["weights_nf4"] + w["quant_constants"]
    assert quantised == pytest.approx(3341e6, rel=0.002)
    assert quantised + w["weights_unquantised"] / 2 == pytest.approx(3866e6, rel=0.002)
    assert sum(w.values()) < 5048e6


# LLaMA-Factory README hardware table (itself an estimate). Our setting: adamw_torch in the
# model's dtype ("pure bf16"). Tolerances are documented disagreements, see docs/plan.md:
# full FT is ~20% above theirs because torch's foreach AdamW holds one param-sized temporary;
# their 70B QLoRA figure is a card size (48 GB), and ours sits 15% below it.
LLAMA_FACTORY = [
    ("llama-7b", "full", 60, 0.25), ("llama-7b", "lora", 16, 0.15), ("llama-7b", "qlora", 6, 0.15),
    ("llama-2-70b", "full", 600, 0.25), ("llama-2-70b", "lora", 160, 0.15), ("llama-2-70b", "qlora", 48, 0.20),
]


@pytest.mark.parametrize("name,method,published_gb,tolerance", LLAMA_FACTORY)
def test_llama_factory_table(name, method, published_gb, tolerance):
    ours = need(name, method, optimizer="adamw_torch")
    assert ours == pytest.approx(published_gb * GB, rel=tolerance)


def test_70b_on_one_24gb_gpu_needs_more_than_qlora():
    assert need("llama-2-70b", "qlora") > 24 * GB
    assert need("llama-2-70b", "qlora", gpus=2) <= 24 * GB          # FSDP-QLoRA on two 24 GB GPUs
    # a 2-bit base on one card: about 23.6 GB, a thin margin under 24e9 bytes
    assert need("llama-2-70b", "qlora", base_bits=2) <= 24 * GB
