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

from bench import method_table


# Per backward moment: decoder layers gathered and whether a layer's unsharded gradient exists.
# "last layer" is the moment without checkpointing that "layer recompute" is with it (bench.plan.predict).
BACKWARD = {"backward start": (1, 0), "layer recompute": (2, 1), "last layer": (2, 1), "backward end": (1, 1)}
ROOTS = ("whole", "split")


def _root_terms(unit: dict, *, root: str, gathered) -> dict:
    """Per backward moment: (the root's gathered bytes, its unsharded gradient bytes).
    whole: one root unit (embeddings, final norm, lm_head: PEFT's, accelerate's, Answer.AI's
      wrapping), gathered from forward to the end of backward; a trained root's gradient is only
      lm_head's part (+ the final norm's) until the embedding's, made last, completes it.
    split: embeddings and lm_head are units of their own (torchtune's custom_sharded_layers, FSDP2),
      resharded after forward and gathered again only around their own backward: lm_head (or the
      tied embedding) while the loss runs backward, the embedding at the end; each one's gradient
      is reduce-scattered when its backward ends."""
    if root == "whole":
        root = gathered(unit["root_bytes"])
        return {"backward start": (root, unit["head_grad_bytes"]), "layer recompute": (root, unit["head_grad_bytes"]),
                "last layer": (root, unit["head_grad_bytes"]), "backward end": (root, unit["root_grad_bytes"])}
    return {"backward start": (gathered(unit["head_bytes"]), unit["head_grad_bytes"]), "layer recompute": (0, 0),
            "last layer": (0, 0), "backward end": (gathered(unit["embed_bytes"]), unit["embed_grad_bytes"])}


def apply(resident: dict, moments: dict, *, gpus: int, offload: str, unit: dict, notes: list,
          root: str = "whole") -> None:
    """`unit` gives the gathered sizes (unit_sizes); `root` how embeddings and lm_head are wrapped (ROOTS)."""
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
        # offloaded, a unit's own shard is on the CPU, so all of it is gathered; else the shard is in the weights
        roots = _root_terms(unit, root=root, gathered=lambda b: b if offload == "all" else b - b // gpus)
        for name, (layers, layer_grad) in BACKWARD.items():
            if name not in moments:
                continue
            root_gathered, root_grad = roots[name]
            moments[name]["fsdp_gathered"] = layers * unit["layer_bytes"] + root_gathered
            moments[name]["fsdp_grad_buffer"] = layer_grad * unit["layer_grad_bytes"] + root_grad
            if unit["root_grad_bytes"]:  # lm_head's gradient is part of the root's unsharded one
                moments[name].pop("head_gradient", None)
        if gpus > 1:
            notes.append(f"FSDP over {gpus} GPUs: weights, gradients and optimizer states sharded; activations, "
                         "logits, quantisation constants, one or two gathered layers and the "
                         + ("root unit are not" if root == "whole" else "lm_head or embedding unit in use are not")
                         + " (figures are per GPU)")


def unit_sizes(config, *, n, method, p, full, layer_trainable, param_bytes, base_bits: int = 4) -> dict:
    """Sizes FSDP gathers: one decoder layer and the root unit, in their storage dtype (16-bit
    under the mixed policies: FSDP's MixedPrecision param_dtype)."""
    layers = config["num_hidden_layers"]
    dense = p["act"] if p["autocast"] else p["weights"]
    quant = method_table.method(method).quant
    # packed data only: the constants are never sharded
    linear_bytes = {"nf4": base_bits / 8, "int8": 1}.get(quant, dense)
    other_bytes = p["unquantised"] if quant else dense
    layer_linear = n["linear"] // layers
    layer_other = (n["norm"] - config["hidden_size"] + n["bias"]) // layers
    root = n["embed"] + n["lm_head"] + config["hidden_size"]
    head = (n["lm_head"] or n["embed"]) + config["hidden_size"]  # lm_head (or the tied embedding) + the final norm
    adapters = 0 if full else layer_trainable * param_bytes
    return {"layer_bytes": int(layer_linear * linear_bytes + layer_other * other_bytes + adapters),
            "root_bytes": root * other_bytes,
            "layer_grad_bytes": layer_trainable * param_bytes,
            "root_grad_bytes": root * param_bytes if full else 0,
            "head_bytes": head * other_bytes, "head_grad_bytes": head * param_bytes if full else 0,
            "embed_bytes": n["embed"] * other_bytes, "embed_grad_bytes": n["embed"] * param_bytes if full else 0}
