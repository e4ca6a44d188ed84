"""Model FLOPs per trained token and MFU, PaLM's definition with frozen weights priced right.

PaLM (Chowdhery et al. 2022, appendix B) counts 6N + 12·L·H·Q·T matmul FLOPs per training token
(N parameters in matmuls; L layers, H heads, Q head dimension, T sequence length) and defines
MFU as observed tokens/s × that count / the hardware's peak FLOP/s: the model's FLOPs only, so
recomputation (gradient checkpointing) and padding never raise it.

6N is 2N for the forward matmuls, 2N for each matmul's input gradient and 2N for its weight
gradient. A frozen weight needs no weight gradient, so under LoRA, DoRA, QLoRA and 8-bit LoRA the
base costs 4N per token and only the trainable matmuls cost 6N:

    model FLOPs per token = 4·N_frozen + 6·N_trainable + 12·L·H·Q·T

Attention has no weights; its backward (gradients of Q, K and V) is twice its forward whatever is
frozen, so 12·L·H·Q·T stands for every method (H = query heads: grouped K/V heads do not shrink
the score matmuls). What is counted, and what is not (docs/mfu.md):
- matmul weights are every nn.Linear the model runs, lm_head included (once, even when tied to
  the input embedding, whose lookup is no matmul); adapters' A and B are trainable matmuls;
- a quantised base (NF4, LLM.int8) counts the FLOPs of the dequantised matmul it stands for, not
  the dequantisation;
- not counted: norms, activations, softmax, DoRA's per-call weight norm, and the input gradient
  the first layer could skip when the embeddings are frozen (at most 2·N of layer 0's
  projections per token, an overcount well under 1/L of the base's backward).
The peak is `env.calibration.matmul_gflops`, a matmul measured in the same process on the run's
device and compute dtype; `mfu_datasheet` divides by the vendor's dense peak instead, where
`env.calibration.datasheet_gflops` knows the device. MFU above 1 means the count or the peak is
wrong (or, against a measured peak, that the calibration ran slower than the steps: contention,
clocks): it is flagged in `mfu_flag` with its reason, and the run's figures stay as measured.
"""


def matmul_params(model) -> dict:
    """{"frozen", "trainable"}: weights of every nn.Linear the model holds (4-bit ones by their
    logical in x out shape), by whether the weight trains. Shared modules count once."""
    import torch

    out, seen = {"frozen": 0, "trainable": 0}, set()
    for module in model.modules():
        if not isinstance(module, torch.nn.Linear) or id(module) in seen:
            continue
        seen.add(id(module))
        out["trainable" if module.weight.requires_grad else "frozen"] += module.in_features * module.out_features
    return out


def attention_shape(config) -> dict:
    """L, H and Q of PaLM's attention term, from a transformers config."""
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return {"layers": config.num_hidden_layers, "heads": heads, "head_dim": head_dim}


def per_token(*, frozen: int, trainable: int, layers: int, heads: int, head_dim: int, seq_len: int) -> int:
    """Training FLOPs per token: 4 per frozen matmul weight, 6 per trainable one, plus attention."""
    return 4 * frozen + 6 * trainable + 12 * layers * heads * head_dim * seq_len


def figures(model, *, seq_len: int, tokens_per_s: float, peak_gflops: float | None, world: int = 1,
            datasheet_gflops: float | None = None) -> dict:
    """The record's throughput additions: model_flops_per_token, mfu (a fraction; None without a
    peak), mfu_datasheet (against the vendor's peak; None where unknown), mfu_flag (why an MFU is
    above 1, else None) and the counts behind them. `world` ranks share the tokens/s, each with
    its own peak."""
    counts = matmul_params(model)
    shape = attention_shape(model.config)
    flops = per_token(**counts, **shape, seq_len=seq_len)
    peak = peak_gflops * 1e9 * world if peak_gflops else None
    sheet = datasheet_gflops * 1e9 * world if datasheet_gflops else None
    mfu = flops * tokens_per_s / peak if peak else None
    mfu_sheet = flops * tokens_per_s / sheet if sheet else None
    return {
        "model_flops_per_token": flops,
        "mfu": mfu,
        "mfu_datasheet": mfu_sheet,
        "mfu_flag": flag(mfu=mfu, mfu_datasheet=mfu_sheet),
        "flops_counted": {"frozen_matmul_params": counts["frozen"], "trainable_matmul_params": counts["trainable"],
                          **shape, "seq_len": seq_len, "peak_flops_per_s": peak, "datasheet_flops_per_s": sheet,
                          "formula": "4*frozen + 6*trainable + 12*layers*heads*head_dim*seq_len (PaLM app. B, "
                                     "frozen weights without weight gradients)"},
    }


def flag(*, mfu: float | None, mfu_datasheet: float | None) -> str | None:
    """Why an MFU above 100% cannot be right, or None. Above the datasheet peak the FLOP count is
    wrong (no device beats its own sheet); above only the measured peak, the calibration may have
    run slower than the steps did."""
    reasons = []
    if mfu_datasheet is not None and mfu_datasheet > 1:
        reasons.append(f"model FLOPs at {100 * mfu_datasheet:.1f}% of the device's datasheet peak: "
                       f"the FLOP count overstates the work")
    if mfu is not None and mfu > 1:
        reasons.append(f"model FLOPs at {100 * mfu:.1f}% of the measured matmul peak: the count overstates the work "
                       f"or the calibration ran slower than the steps (contention, clocks)")
    return "; ".join(reasons) or None
