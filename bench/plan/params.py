"""Parameter counts from a dense decoder-only config, by pure arithmetic, per architecture family.

The layout is HF's LlamaForCausalLM: token embedding; per layer q/k/v/o projections (GQA:
k and v are hidden x kv_heads*head_dim), gate/up/down MLP, RMSNorm weight vectors; a final
norm; and an lm_head unless tied to the embedding. The families the planner prices differ from
it only in these ways (read from each family's modeling file in transformers 5.x):
  llama, mistral  as above; `attention_bias` puts bias on q, k, v and o, `mlp_bias` on the MLP
  qwen2           bias on q, k and v only, always
  qwen3           no bias; a q_norm and a k_norm per layer, head_dim wide each
  gemma           as llama (GeGLU has the same three projections); embeddings tied by default
  gemma2          four norms per layer (input, post-attention, pre- and post-feedforward); tied
  gemma3_text     gemma2's four norms plus q_norm and k_norm (head_dim each); tied
  phi3            q, k, v fused into qkv_proj and gate, up into gate_up_proj: the same weights,
                  but two Linear modules fewer per layer, which changes LoRA's count
Anything else is refused by bench.plan.presets.validate, mixture-of-experts first.
"""

# family -> (norm vectors of hidden size per layer, q/k norms of head_dim per layer, fused projections)
FAMILIES = {
    "llama": (2, False, False), "mistral": (2, False, False), "qwen2": (2, False, False),
    "qwen3": (2, True, False), "gemma": (2, False, False), "gemma2": (4, False, False),
    "gemma3_text": (4, True, False), "phi3": (2, False, True),
}
TIED_BY_DEFAULT = ("gemma", "gemma2", "gemma3_text")  # the config classes' tie_word_embeddings default


def linears(config: dict) -> list:
    """Per-layer linear layers as (name, in_features, out_features, has_bias)."""
    h, i = config["hidden_size"], config["intermediate_size"]
    q_out = config["num_attention_heads"] * config["head_dim"]
    kv_out = config["num_key_value_heads"] * config["head_dim"]
    family = config.get("model_type", "llama")
    qkv_bias = bool(config.get("attention_bias")) or family == "qwen2"
    o_bias = bool(config.get("attention_bias")) and family != "qwen2"
    mlp_bias = bool(config.get("mlp_bias"))
    if FAMILIES.get(family, FAMILIES["llama"])[2]:
        return [("qkv_proj", h, q_out + 2 * kv_out, qkv_bias), ("o_proj", q_out, h, o_bias),
                ("gate_up_proj", h, 2 * i, mlp_bias), ("down_proj", i, h, mlp_bias)]
    return [
        ("q_proj", h, q_out, qkv_bias), ("k_proj", h, kv_out, qkv_bias), ("v_proj", h, kv_out, qkv_bias),
        ("o_proj", q_out, h, o_bias),
        ("gate_proj", h, i, mlp_bias), ("up_proj", h, i, mlp_bias), ("down_proj", i, h, mlp_bias),
    ]


def counts(config: dict) -> dict:
    """Parameters by storage class. `linear` is what bitsandbytes quantises (weights of the
    decoder Linear layers); everything else stays in the compute dtype."""
    h, layers, vocab = config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]
    norms_per_layer, qk_norm, _ = FAMILIES.get(config.get("model_type", "llama"), FAMILIES["llama"])
    per_layer = linears(config)
    linear_w = layers * sum(i * o for _, i, o, _ in per_layer)
    bias = layers * sum(o for _, _, o, b in per_layer if b)
    norms = layers * (norms_per_layer * h + (2 * config["head_dim"] if qk_norm else 0)) + h  # + the final norm
    embed = vocab * h
    lm_head = 0 if config["tie_word_embeddings"] else vocab * h
    return {"linear": linear_w, "bias": bias, "norm": norms, "embed": embed, "lm_head": lm_head,
            "total": linear_w + bias + norms + embed + lm_head}


def lora_counts(config: dict, *, r: int, targets="all-linear", dora: bool = False) -> dict:
    """LoRA adapter parameters: r*(in+out) per targeted linear; DoRA adds a magnitude vector of
    size `out` per target. `targets` is 'all-linear' (every decoder linear, not lm_head) or a
    list of module names such as ['q_proj', 'v_proj']."""
    chosen = [lin for lin in linears(config) if targets == "all-linear" or lin[0] in targets]
    per_layer = sum(r * (i + o) + (o if dora else 0) for _, i, o, _ in chosen)
    return {"params": config["num_hidden_layers"] * per_layer,
            "targets": config["num_hidden_layers"] * len(chosen),
            "target_out_features": config["num_hidden_layers"] * sum(o for _, _, o, _ in chosen),
            "target_in_features": config["num_hidden_layers"] * sum(i for _, i, _, _ in chosen)}
