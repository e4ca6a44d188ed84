"""The arithmetic behind each memory term, in bytes. Pure functions of a validated config.

Activation counts follow the method of Korthikanti et al. 2022, "Reducing Activation
Recomputation in Large Transformer Models" (§4: count every tensor autograd saves for
backward). Their GPT figure, s*b*h*(34 + 5*a*s/h) bytes per layer in 16-bit, assumes dropout
masks, a 4h MLP and materialised a*s^2 attention scores. Redone for HF's Llama layer with SDPA
(flash/efficient kernels keep no scores, only a per-head logsumexp), SwiGLU and no dropout,
the saved elements per token per layer are:
  input RMSNorm       x, x*rsqrt (only if its weight trains), output      3h (peft: 2h)
  attention           q, k, v, SDPA output, o_proj's contiguous input     3*q_out + 2*kv_out
  post-attn RMSNorm   as above                                             3h (peft: 2h)
  MLP                 gate out, SiLU out, up out, product (down's input)   4i
so 9h + 2kv + 4i for full fine-tuning with q_out = h (Korthikanti's 34 counts 16-bit bytes
with a 4h MLP; ours counts elements, multiplied by the compute dtype's size).
"""

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}

NF4_BLOCK = 64          # bitsandbytes 4-bit blocksize: one absmax per 64 weights
DQ_BLOCK = 256          # double quantisation: one fp32 constant per 256 int8 absmax values
OPT8_BLOCK = 256        # bnb 8-bit optimizers: one fp32 absmax per 256 state values


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
    adamw_torch: zeros_like(param), so 2 * the parameter's dtype (8 bytes for fp32 params).
    paged_adamw (bnb 32-bit): always fp32 states, 8 bytes. 8-bit variants: 2 bytes plus an fp32
    absmax per 256 values per state (2 * 4/256 = 0.031 bytes)."""
    if optimizer == "adamw_torch":
        return 2 * param_bytes
    if optimizer == "paged_adamw":
        return 8
    return 2 + 2 * 4 / OPT8_BLOCK


def layer_activation_elements(config: dict, *, peft: bool, lora_r: int = 0, lora_targets: int = 0,
                              dora_out: int = 0) -> int:
    """Elements saved for backward per token by one decoder layer (see the module docstring).
    LoRA adds each adapter's r-wide intermediate; DoRA adds base and adapter outputs per target."""
    h, i = config["hidden_size"], config["intermediate_size"]
    q_out = config["num_attention_heads"] * config["head_dim"]
    kv_out = config["num_key_value_heads"] * config["head_dim"]
    norms = 2 * (2 if peft else 3) * h
    attention = 3 * q_out + 2 * kv_out
    mlp = 4 * i
    return norms + attention + mlp + lora_r * lora_targets + 2 * dora_out


def lora_dropout_bytes(*, tokens: int, target_in_features: int, dtype_bytes: int, dropout: float) -> int:
    """peft applies dropout to each adapter's input: with p > 0 it saves a new tensor (the
    dropped-out input, which lora_A's backward needs) and a bool mask per targeted linear, i.e.
    tokens x in_features x (dtype bytes + 1) over all targets. With p = 0 peft uses Identity
    and the base layer's saved input is shared: nothing extra. Measured on smollm2-135m
    (batch 4 x 128, fp32, 210 targets): dropout 0.05 raised the LoRA train peak by 505 MiB."""
    return tokens * target_in_features * (dtype_bytes + 1) if dropout > 0 else 0


def activation_bytes(*, config: dict, tokens: int, dtype_bytes: int, checkpointing: bool,
                     layer_elements: int) -> int:
    """Saved activations of the decoder stack at the start of backward.
    Without checkpointing: every layer's saved tensors, plus the final norm (3h).
    With HF gradient checkpointing: each layer keeps only its input (h), and one layer at a time
    is recomputed during backward, so one layer's saved tensors are added back."""
    h, layers = config["hidden_size"], config["num_hidden_layers"]
    if checkpointing:
        per_token = layers * h + layer_elements + 3 * h
    else:
        per_token = layers * layer_elements + 3 * h
    return tokens * per_token * dtype_bytes


def logits_bytes(*, config: dict, tokens: int) -> int:
    """Logits and the loss at the start of backward: 4 fp32-sized copies of tokens x vocab.
    HF's ForCausalLMLoss upcasts logits to fp32 and calls cross_entropy, which saves the fp32
    log_softmax; the caller still holds the logits; backward then materialises the gradient of
    the log_softmax output and of its input before the first one is freed. In fp32 that is
    4+4+4+4 bytes; in 16-bit, 2 (logits) + 4 + 4 + 4 + 2 (cast-back gradient): also 16."""
    return 16 * tokens * config["vocab_size"]


def inference_bytes(*, config: dict, tokens: int, dtype_bytes: int) -> int:
    """Forward without grad (the `base` method, scoring): one layer's working set, and the
    logits plus lm-eval's fp32 log_softmax of them (2 fp32 copies)."""
    working = config["intermediate_size"] * 3 + config["hidden_size"] * 4
    return tokens * working * dtype_bytes + 8 * tokens * config["vocab_size"]


def forward_volume_bytes(*, config: dict, tokens: int, dtype_bytes: int, layer_elements: int,
                         adapter_out: int = 0) -> int:
    """Bytes a forward pass allocates whether or not checkpointing later frees them: every
    layer's would-be-saved tensors, each adapter's output (peft adds lora_B(...) * scaling to
    the base output: `adapter_out` is the sum of targeted out_features over all layers), and the
    logits with their fp32 log_softmax (2 x 4 bytes x tokens x vocab). On CPU, glibc keeps much
    of this resident after it is freed, so the `allocator` term is a fraction of it."""
    stack = config["num_hidden_layers"] * layer_elements + adapter_out
    return tokens * stack * dtype_bytes + 8 * tokens * config["vocab_size"]
