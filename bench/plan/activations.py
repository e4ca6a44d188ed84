"""Bytes that autograd saves for backward, per token, and the logits/loss working set.

Method of Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer
Models", §4): count every tensor autograd saves. Redone for HF's Llama layer with SDPA (no
score matrix, a per-head logsumexp only), SwiGLU and no attention dropout. Autograd saves an
operand only for the gradient of an input that requires grad, so a frozen linear saves its
weight (already resident), not its input: which inputs are saved depends on which modules
train. Per layer and token:
  RMSNorm (x2)   HF upcasts its input to fp32 and pow/mul save that copy: 4h bytes; with a
                 trained weight also the normalised output (residual dtype).
  linear inputs  four groups: attention input (h; q, k, v), o_proj input (q_out), MLP input
                 (h; gate, up), down_proj input (i). Saved once if a consumer trains its weight
                 or its adapter reads it in the same dtype; one copy per adapter when peft casts
                 it to the adapter's dtype (fp32 adapters on a 16-bit base: 4 bytes per element)
                 or when autocast casts it (16-bit, one copy per consumer); LoRA dropout > 0
                 saves a dropped copy and a 1-byte mask per adapter instead of sharing.
  attention      SDPA saves q, k, v and its output: 2*q_out + 2*kv_out elements.
  padded batch   with a padding mask, transformers' SDPA path repeats K and V to the query heads
                 (repeat_kv; without a mask it passes enable_gqa instead), so SDPA saves the
                 repeated copies: 2*(q_out - kv_out) elements more; and SDPA turns the boolean
                 mask into an additive bias in the activation dtype inside every call and saves
                 it: batch x seq x seq per layer, seq elements per token. Measured on CPU with the
                 saved-tensor probe (bench.measure.saved, tests/test_padded_attention.py).
  MLP            gate output, SiLU output, up output: 3i (torch.compile fuses SiLU: 2i).
  adapters       lora_A's r-wide output per target; DoRA also the base output (activation
                 dtype) and the adapter output (adapter dtype), `out` elements each.
Checked for full fp32 against the earlier count (9h + 2kv + 4i elements with q_out = h).
"""

GROUPS = (("attn_in", ("q_proj", "k_proj", "v_proj")), ("o_in", ("o_proj",)),
          ("mlp_in", ("gate_proj", "up_proj")), ("down_in", ("down_proj",)))
# Phi-3 fuses q/k/v and gate/up into one Linear each: one consumer per group
FUSED_GROUPS = (("attn_in", ("qkv_proj",)), ("o_in", ("o_proj",)), ("mlp_in", ("gate_up_proj",)),
                ("down_in", ("down_proj",)))


def input_groups(config: dict) -> tuple:
    from bench.plan.params import linears

    return FUSED_GROUPS if linears(config)[0][0] == "qkv_proj" else GROUPS


def widths(config: dict) -> dict:
    h, i = config["hidden_size"], config["intermediate_size"]
    return {"attn_in": h, "o_in": config["num_attention_heads"] * config["head_dim"], "mlp_in": h, "down_in": i}


def _group(width, consumers, *, full, targets, p, dropout) -> int:
    """Bytes per token saved for one group of linears that read the same input."""
    if full:
        return len(consumers) * 2 * width if p["autocast"] else p["act"] * width
    chosen = [c for c in consumers if c in targets]
    if not chosen:
        return 0
    mask = 1 if dropout else 0
    if p["autocast"]:  # lora_A runs under autocast: a 16-bit copy of its input per adapter
        return len(chosen) * width * (2 + mask)
    if p["adapter"] == p["act"] and not dropout:
        return width * p["act"]  # lora_A saves the very tensor the base layer received
    return len(chosen) * width * (p["adapter"] + mask)


EAGER = ("gemma2",)  # transformers' Gemma2 has no SDPA path (softcapping): eager attention


def eager_attention_bytes(config: dict, *, seq_len: int, act: int) -> int:
    """Bytes per token one layer's eager attention saves (Gemma2): the query, the K/V repeated to
    the query heads (matmul operands), and per head and key position the tanh of the soft-capped
    scores (activation dtype), the fp32 softmax and its cast back to the activation dtype (the
    cast is a no-op in fp32): 8 bytes per score element in bf16 and in fp32 alike. Measured with
    the saved-tensor probe on a small Gemma2 (tests/test_padded_attention.py)."""
    q_out = config["num_attention_heads"] * config["head_dim"]
    score = act + 4 + (act if act < 4 else 0) if config.get("attn_logit_softcapping") else 4 + (act if act < 4 else 0)
    return 3 * q_out * act + config["num_attention_heads"] * seq_len * score


def padded_attention_bytes(config: dict, *, seq_len: int, act: int) -> int:
    """Bytes per token one layer saves because the batch carries a padding mask: the repeated
    K/V copies (GQA only) and the additive mask bias (module docstring)."""
    q_out = config["num_attention_heads"] * config["head_dim"]
    kv_out = config["num_key_value_heads"] * config["head_dim"]
    return (2 * (q_out - kv_out) + seq_len) * act


def layer_bytes(config: dict, *, full: bool, targets, p: dict, dropout: bool, lora_r: int = 0,
                dora: bool = False, compile: bool = False, out_features=None, padded_seq: int = 0,
                seq_len: int = 0) -> int:
    """Bytes per token one decoder layer saves for backward (see the module docstring);
    `padded_seq` is the sequence length of a padded batch (0: packed, no mask); `seq_len` prices
    eager attention's score matrices (EAGER families)."""
    h, i = config["hidden_size"], config["intermediate_size"]
    q_out = config["num_attention_heads"] * config["head_dim"]
    kv_out = config["num_key_value_heads"] * config["head_dim"]
    norm_in = p["resid"] if compile else 4  # compiled RMSNorm recomputes the fp32 upcast
    norms = 2 * (norm_in * h + (p["resid"] * h if full else 0))
    width = widths(config)
    groups = sum(_group(width[g], c, full=full, targets=targets, p=p, dropout=dropout) for g, c in input_groups(config))
    act = p["act"]
    attention = (2 * q_out + 2 * kv_out) * act
    if config.get("model_type") in EAGER:  # eager: scores saved, K/V always repeated, no mask bias
        attention, padded_seq = eager_attention_bytes(config, seq_len=seq_len or padded_seq, act=act), 0
    mlp = (2 if compile else 3) * i * act
    adapter_act = 2 if p["autocast"] else p["adapter"]
    n_targets = 0 if full else len(targets)
    adapters = n_targets * lora_r * adapter_act
    if dora and not full:
        adapters += sum(out_features[t] for t in targets) * (act + adapter_act)
    padded = padded_attention_bytes(config, seq_len=padded_seq, act=act) if padded_seq else 0
    return norms + groups + attention + mlp + adapters + padded


def stack_bytes(config: dict, *, tokens: int, layer: int, p: dict, full: bool, checkpointing: bool,
                offload: bool = False, recomputing: bool = True) -> int:
    """Saved activations of the whole decoder in backward. Checkpointing keeps each layer's input
    (h, residual dtype) and recomputes one layer at a time, once backward reaches it
    (`recomputing`: that layer's saved tensors are alive; not yet while the loss's backward runs).
    Activation offload (torchtune's OffloadActivations) moves saved tensors to CPU as they are
    made, leaving about two layers' worth in flight on the device. Plus the final norm: its fp32
    input copy, and with lm_head trained the normalised output and lm_head's input."""
    h, layers = config["hidden_size"], config["num_hidden_layers"]
    final = 4 * h + ((p["resid"] + p["act"]) * h if full else 0)
    inputs = p["resid"] * h
    if checkpointing:
        kept = (2 if offload else layers) * inputs
        return tokens * (kept + (layer if recomputing else 0) + final)
    return tokens * ((2 if offload else layers) * layer + final)


LOSSES = ("standard", "chunked", "fp32-logits")
CHUNKS = 8  # torchtune's CEWithChunkedOutputLoss default num_output_chunks


def logits_bytes(config: dict, *, tokens: int, logits_dtype: int, loss: str = "standard",
                 compile: bool = False, keep_logits: bool = False) -> int:
    """The logits and the loss at their peak, inside cross-entropy's backward, in bytes.
    standard (HF ForCausalLMLoss, transformers >= 4.46): the loss upcasts the logits to fp32 and
      log_softmax saves its fp32 output; backward then holds the fp32 gradient of that output and
      of its input at once: 4 + 4 + 4 bytes per element. The logits themselves are alive too only
      if the training loop still holds the model output (`keep_logits`: `out = model(...)`, then
      `out.loss.backward()`, as PEFT's method comparison and Answer.AI's train.py do; HF's Trainer,
      torchtune and ftbench's harness drop it): + lm_head's dtype.
    fp32-logits (transformers < 4.45): the model returns fp32 logits, so a held copy is 4 bytes.
    chunked (torchtune CEWithChunkedOutputLoss, 8 chunks): each chunk is upcast on its own;
      eager saves every chunk's fp32 log_softmax (4) and backward works one chunk at a time (8/8);
      compiled (torchtune compiles the per-chunk loss), inductor's partitioner saves the smaller
      tensor, the chunk in lm_head's dtype (and a per-row logsumexp), and recomputes the softmax in
      one fused backward kernel that upcasts in registers and writes the chunk's gradient in
      lm_head's dtype: every chunk saved plus one chunk's gradient (logits dtype x (1 + 1/8))."""
    per = tokens * config["vocab_size"]
    held = (4 if loss == "fp32-logits" else logits_dtype) if keep_logits else 0
    if loss in ("standard", "fp32-logits"):
        return per * (12 + held)
    if compile:
        return per * logits_dtype + per * logits_dtype // CHUNKS
    return per * (4 + held) + per * 8 // CHUNKS


def held_logits_bytes(config: dict, *, tokens: int, logits_dtype: int, loss: str = "standard",
                      keep_logits: bool = False) -> int:
    """The logits the training loop still holds through backward (`keep_logits`), as in
    logits_bytes: lm_head's dtype, or fp32 under fp32-logits."""
    if not keep_logits:
        return 0
    return tokens * config["vocab_size"] * (4 if loss == "fp32-logits" else logits_dtype)


def mask_bytes(*, batch: int, seq: int, packing: bool) -> int:
    """A padded batch gets a boolean 4-D attention mask (batch x 1 x seq x seq) from HF's SDPA
    path; packed sequences need none (position ids or varlen kernels)."""
    return 0 if packing else batch * seq * seq


def inference_bytes(*, config: dict, tokens: int, act: int) -> int:
    """Forward without grad (the `base` method, scoring): one layer's working set, and the
    logits plus lm-eval's fp32 log_softmax of them (2 fp32 copies)."""
    working = config["intermediate_size"] * 3 + config["hidden_size"] * 4
    return tokens * working * act + 8 * tokens * config["vocab_size"]


def forward_volume_bytes(*, config: dict, tokens: int, layer: int, adapter_out: int, logits_dtype: int) -> int:
    """Bytes a forward pass allocates whether or not checkpointing later frees them: every
    layer's would-be-saved tensors, each adapter's output (peft adds lora_B(...) * scaling to
    the base output; `adapter_out` is bytes per token over all layers), and the logits with
    their fp32 log_softmax. On CPU glibc keeps much of this resident after it is freed, so the
    CPU `allocator` term is a fraction of it."""
    stack = config["num_hidden_layers"] * layer + adapter_out
    return tokens * stack + tokens * config["vocab_size"] * (logits_dtype + 4)


def loss_forward_bytes(config: dict, *, tokens: int, logits_dtype: int, loss: str = "standard",
                       compile: bool = False) -> int:
    """The logits and the loss at their peak while the loss's forward runs, in bytes.
    standard: the logits (lm_head's dtype) alive in the output, their fp32 upcast and the saved
      fp32 log_softmax: dtype + 4 + 4 per element (below the backward's 12).
    fp32-logits: the fp32 logits, the shifted contiguous copy and the log_softmax: 4 + 4 + 4.
    chunked, eager: the model's output is the list of every chunk's logits (lm_head's dtype), held
      while the loss loops over it; at the last chunk the other chunks' fp32 log_softmax are saved
      and that chunk's upcast and log_softmax are being made: dtype + 4 x (n-1)/n + 2 x 4/n, above
      the backward's 4 + 8/n. Compiled: the chunks, which the compiled loss saves anyway, and no
      fp32 copy (the kernel upcasts in registers): dtype."""
    per = tokens * config["vocab_size"]
    if loss == "standard":
        return per * (logits_dtype + 8)
    if loss == "fp32-logits":
        return per * 12
    if compile:
        return per * logits_dtype
    return per * logits_dtype + per * 4 * (CHUNKS - 1) // CHUNKS + per * 8 // CHUNKS
