"""Storage arithmetic for weights and optimizer state, in bytes. Pure functions."""

NF4_BLOCK = 64          # bitsandbytes 4-bit blocksize: one absmax per 64 weights
DQ_BLOCK = 256          # double quantisation: one fp32 constant per 256 int8 absmax values
OPT8_BLOCK = 256        # bnb 8-bit optimizers: one fp32 absmax per 256 state values

OPTIMIZERS = ("adamw_torch", "adamw_torch_fused", "adamw_8bit", "paged_adamw", "paged_adamw_8bit")
PAGED = ("paged_adamw", "paged_adamw_8bit")


def nf4_bytes_per_param(*, double_quant: bool, bits: int = 4) -> float:
    """NF4 storage: bits/8 per weight plus block constants.
    Plain: fp32 absmax per 64 -> 32/64 = 0.5 bits/param.
    DQ: int8 absmax per 64 (8/64 = 0.125 bits) + fp32 per 256 blocks (32/(64*256) = 0.002 bits)
        = 0.127 bits/param, saving 0.373 bits/param."""
    constants_bits = 8 / NF4_BLOCK + 32 / (NF4_BLOCK * DQ_BLOCK) if double_quant else 32 / NF4_BLOCK
    return (bits + constants_bits) / 8


def int8_bytes(*, linear_params: int, out_rows: int) -> int:
    """LLM.int8 (Linear8bitLt): one int8 byte per weight plus an fp32 scale per output row."""
    return linear_params + 4 * out_rows


def optimizer_bytes_per_param(optimizer: str, *, param_bytes: int) -> float:
    """AdamW keeps two states (exp_avg, exp_avg_sq) per trainable parameter.
    adamw_torch(_fused): zeros_like(param), so 2 * the parameter's dtype (8 bytes for fp32).
    paged_adamw (bnb 32-bit): always fp32 states, 8 bytes. 8-bit variants: 2 bytes plus an fp32
    absmax per 256 values per state (2 * 4/256 = 0.031 bytes)."""
    if optimizer in ("adamw_torch", "adamw_torch_fused"):
        return 2 * param_bytes
    if optimizer == "paged_adamw":
        return 8
    return 2 + 2 * 4 / OPT8_BLOCK


def optimizer_temporaries(*, optimizer: str, device: str, trainable_bytes: int, largest_bytes: int) -> int:
    """Scratch memory of one optimizer step. torch AdamW on CUDA takes the foreach path:
    `_foreach_sqrt(exp_avg_sq)` makes one parameter-sized list over all trainable tensors. On CPU
    it loops per tensor: about two temporaries the size of the largest one. The fused kernel
    (adamw_torch_fused) and bnb's per-tensor kernels make none worth counting."""
    if optimizer != "adamw_torch":
        return 0
    return trainable_bytes if device == "cuda" else 2 * largest_bytes
