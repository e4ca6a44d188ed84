"""Parameter counts from a decoder-only (Llama/Mistral/Qwen2) config, by pure arithmetic.

The layout is HF's LlamaForCausalLM: token embedding; per layer q/k/v/o projections (GQA:
k and v are hidden x kv_heads*head_dim), gate/up/down MLP, two RMSNorm weight vectors; a final
norm; and an lm_head unless tied to the embedding. Qwen2 adds bias to q, k and v only.
"""


def linears(config: dict) -> list:
    """Per-layer linear layers as (name, in_features, out_features, has_bias)."""
    h, i = config["hidden_size"], config["intermediate_size"]
    q_out = config["num_attention_heads"] * config["head_dim"]
    kv_out = config["num_key_value_heads"] * config["head_dim"]
    qkv_bias = bool(config.get("attention_bias")) or config.get("model_type") == "qwen2"
    o_bias = bool(config.get("attention_bias"))
    mlp_bias = bool(config.get("mlp_bias"))
    return [
        ("q_proj", h, q_out, qkv_bias), ("k_proj", h, kv_out, qkv_bias), ("v_proj", h, kv_out, qkv_bias),
        ("o_proj", q_out, h, o_bias),
        ("gate_proj", h, i, mlp_bias), ("up_proj", h, i, mlp_bias), ("down_proj", i, h, mlp_bias),
    ]


def counts(config: dict) -> dict:
    """Parameters by storage class. `linear` is what bitsandbytes quantises (weights of the
    decoder Linear layers); everything else stays in the compute dtype."""
    h, layers, vocab = config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]
    per_layer = linears(config)
    linear_w = layers * sum(i * o for _, i, o, _ in per_layer)
    bias = layers * sum(o for _, _, o, b in per_layer if b)
    norms = layers * 2 * h + h  # two RMSNorm weights per layer + the final norm
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
