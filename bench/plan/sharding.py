"""FSDP sharding and CPU offload applied to one device's terms (in place).

FSDP over N GPUs (FULL_SHARD, one unit per decoder layer, the root unit holding embeddings,
final norm and lm_head, as PEFT's, accelerate's and Answer.AI's FSDP-QLoRA recipes wrap) divides
the parameters it manages (weights, adapters), their gradients and the optimizer state by N.
What it does not divide, each from how FSDP and bitsandbytes work:
  quant_constants   bitsandbytes' quantisation state (absmax, the nested absmax of double
                    quantisation, the NF4 code) lives on each Params4bit as `quant_state`, not as
                    a parameter: FSDP flattens and shards the packed 4-bit storage only, and every
                    rank keeps the whole quant state (LLM.int8's SCB row scales likewise).
  fsdp_gathered     decoder layers gathered in their storage dtype (the packed NF4 data for
                    QLoRA; the constants are already whole), plus the root unit, which FSDP keeps
                    gathered from forward to the end of backward (its own shard is already counted
                    in the weights). How many layers depends on the moment: while the loss runs
                    backward, one (the root's pre-backward hook prefetches the last layer,
                    BACKWARD_PRE); while a layer runs backward, two (it and the one it prefetches;
                    limit_all_gathers allows two in flight); at the first layer, one (nothing is
                    left to prefetch but the root, already whole).
  fsdp_grad_buffer  a layer's unsharded gradient before reduce-scatter, only while a layer runs
                    backward (none while the loss does); and for a trained root its unsharded
                    gradient, which is reduced only at the end of backward: until the first layer,
                    only lm_head's part of it (lm_head's, or the tied embedding's, and the final
                    norm's) exists, as the embedding's gradient is made last.
And two terms outside the live tensors, added by bench.plan.predict (CUDA only):
  fsdp_stream_pool  allocator slack: the all-gathers run on their own stream, and the caching
                    allocator keeps a pool per stream; FSDP1 frees a gathered unit with
                    `record_stream`, so its block returns to the pool only once the compute
                    stream has passed it, by which time the next all-gather has asked for a
                    block: the unshard stream's pool holds one gathered layer more than are in
                    use, reserved but not allocated.
  nccl              NCCL's communicator buffers, allocated by NCCL outside torch's pool: device
                    memory only (bench.plan.predict.NCCL_BYTES, assumed).
offload='optimizer' keeps optimizer states in CPU memory; 'all' also the weights and gradients
(FSDP CPUOffload), leaving the gathered units on the device.
"""


# Per backward moment: decoder layers gathered, whether a layer's unsharded gradient exists, and
# whether the root's whole gradient does (else only lm_head's part of it). "last layer" is the
# moment without checkpointing that "layer recompute" is with it (bench.plan.predict).
BACKWARD = {"backward start": (1, 0, False), "layer recompute": (2, 1, False), "last layer": (2, 1, False),
            "backward end": (1, 1, True)}


def apply(resident: dict, moments: dict, *, gpus: int, offload: str, unit: dict, notes: list) -> None:
    """`unit` gives the gathered sizes: layer_bytes, root_bytes, layer_grad_bytes, root_grad_bytes,
    head_grad_bytes."""
    weight_keys = [k for k in resident if k.startswith("weights") or k == "adapters"]  # quant_constants stay whole
    step = moments.get("optimizer step", {})
    backwards = [moments[m] for m in BACKWARD if m in moments]
    if offload in ("optimizer", "all"):
        resident["optimizer_states"] = 0
        step["optimizer_temporaries"] = 0
        notes.append("optimizer states offloaded to CPU memory (the CPU must hold them; steps get slower)")
    if offload == "all":  # CPUOffload moves the parameters FSDP manages; the quant state is not one
        for key in weight_keys:
            resident[key] = 0
        for moment in [step] + backwards:
            if "gradients" in moment:
                moment["gradients"] = 0
        notes.append("weights and gradients offloaded to CPU; the gathered layers stay on the device")
    if gpus > 1 or offload == "all":
        for key in weight_keys + ["optimizer_states", "paged_optimizer_states"]:
            if key in resident:
                resident[key] = -(-resident[key] // gpus)
        for moment in [step] + backwards:
            for key in ("gradients", "optimizer_temporaries"):
                if key in moment:
                    moment[key] = -(-moment[key] // gpus)
        root_gathered = unit["root_bytes"] if offload == "all" else unit["root_bytes"] - unit["root_bytes"] // gpus
        for name in BACKWARD:
            if name not in moments:
                continue
            layers, layer_grad, root_grad = BACKWARD[name]
            moments[name]["fsdp_gathered"] = layers * unit["layer_bytes"] + root_gathered
            moments[name]["fsdp_grad_buffer"] = (layer_grad * unit["layer_grad_bytes"]
                                                 + unit["root_grad_bytes" if root_grad else "head_grad_bytes"])
            if unit["root_grad_bytes"]:  # lm_head's gradient is part of the root's unsharded one
                moments[name].pop("head_gradient", None)
        if gpus > 1:
            notes.append(f"FSDP over {gpus} GPUs: weights, gradients and optimizer states sharded; activations, "
                         "logits, quantisation constants, one or two gathered layers and the root unit are not "
                         "(figures are per GPU)")


def unit_sizes(config, *, n, method, p, full, layer_trainable, param_bytes, base_bits: int = 4) -> dict:
    """Sizes FSDP gathers: one decoder layer and the root unit, in their storage dtype (16-bit
    under the mixed policies: FSDP's MixedPrecision param_dtype)."""
    layers = config["num_hidden_layers"]
    dense = p["act"] if p["autocast"] else p["weights"]
    linear_bytes = {"qlora": base_bits / 8, "lora8": 1}.get(method, dense)  # packed data only: the constants are never sharded
    other_bytes = p["unquantised"] if method in ("qlora", "lora8") else dense
    layer_linear = n["linear"] // layers
    layer_other = (n["norm"] - config["hidden_size"] + n["bias"]) // layers
    root = n["embed"] + n["lm_head"] + config["hidden_size"]
    adapters = 0 if full else layer_trainable * param_bytes
    return {"layer_bytes": int(layer_linear * linear_bytes + layer_other * other_bytes + adapters),
            "root_bytes": root * other_bytes,
            "layer_grad_bytes": layer_trainable * param_bytes,
            "root_grad_bytes": root * param_bytes if full else 0,
            "head_grad_bytes": ((n["lm_head"] or n["embed"]) + config["hidden_size"]) * param_bytes if full else 0}
