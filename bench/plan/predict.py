"""Predict the train-phase peak memory of one run from its model config alone (no torch).

The peak is the largest of three moments of a training step (gradients are set to None
between steps, so none are alive when the forward pass runs):
  backward start:  resident state + saved activations + logits/loss working set
  backward end:    resident state + every gradient + the first layer's saved activations
  optimizer step:  resident state + gradients + the optimizer's temporaries
where resident state = weights + adapters + optimizer states (alive from the first step on).
With the optimizer step fused into backward there is no step moment: each gradient is
stepped and freed in its hook, so only the largest one (and its step's scratch) is alive.

Figures (what each one predicts):
  allocated_bytes  live tensors at the peak: torch.cuda.max_memory_allocated / torchtune's
                   "peak memory active"
  total_bytes      what the record measures: CUDA max_memory_reserved (allocated + caching
                   slack); CPU peak RSS (baseline interpreter + libraries and glibc retention)
  paged_bytes      bitsandbytes' paged optimizer state, in CUDA managed memory, which torch's
                   allocator never sees: outside total_bytes
  device_bytes     what must fit on the GPU, as nvidia-smi shows it: total + paged + context
`terms` lists what is alive at the peak moment and sums to total_bytes; `components` lists
every term whatever the moment.
"""

from bench.errors import BenchError
from bench.plan import activations as A, options as O, params, precision, presets, sharding, terms as T

PEFT = ("lora", "qlora", "dora", "lora8")
KBIT = ("qlora", "lora8")
OPTIMIZERS, DEVICES, OFFLOADS = T.OPTIMIZERS, O.DEVICES, O.OFFLOADS

# CPU: RSS of python + torch + transformers + peft + bitsandbytes after the imports, before the
# model. The harness measures it in every record (memory.baseline_bytes) and the worker passes it
# in; this default is the median of that figure over the calibration records in
# reports/samples/plan-calibration/results.jsonl (bench.plan.calibration).
CPU_BASELINE_BYTES = 464_000_000
# CPU: glibc keeps freed forward-pass memory resident (holes between saved tensors), so peak RSS
# exceeds the live bytes. Modelled as a fraction of the forward volume
# (activations.forward_volume_bytes, plus bitsandbytes' dequantised copies); 0.49 is the
# least-max-error fit (bench.plan.calibration fit) over the 10 smollm2-135m harness records in
# reports/samples/plan-calibration/results.jsonl: in-sample max |error| 14.6%. Out of sample
# (reports/samples/plan-out-of-sample/, models the fit never saw): max 15.3%. docs/plan.md.
CPU_ALLOCATOR_FRACTION = 0.49
# CUDA: context + cuBLAS workspace as nvidia-smi sees them, outside torch's reserved pool.
# Typical for torch 2.x on CUDA 12 (H100/H200, A100, RTX 4090): 0.5-1 GB; we take 768 MiB, the
# middle. An assumption: no GPU measured it.
CUDA_CONTEXT_BYTES = 768 * 2**20
# CUDA: caching-allocator slack, reserved over allocated, as a fraction of what is allocated and
# freed while training (optimizer states and the transient peak); weights are allocated once
# in large blocks. An assumption, checked (not fitted) against the published figures in docs/plan.md.
CUDA_ALLOCATOR_FRACTION = 0.05


def target_names(config: dict, target_modules) -> list:
    """The decoder linears that carry adapters; an unknown name is one error listing the valid ones."""
    valid = [name for name, *_ in params.linears(config)]
    if target_modules == "all-linear":
        return valid
    chosen = [target_modules] if isinstance(target_modules, str) else list(target_modules)
    bad = [t for t in chosen if t not in valid]
    if bad or not chosen:
        raise BenchError(f"unknown target module {(bad or [''])[0]!r} for this model; valid choices: "
                         f"all-linear, {', '.join(valid)}")
    return [name for name in valid if name in chosen]


def weight_terms(config: dict, *, method: str, p: dict, double_quant: bool = True, base_bits: int = 4) -> dict:
    """Base weights by storage type. bitsandbytes quantises only the decoder Linear weights;
    embeddings, norms, biases and lm_head keep the policy's weight dtype (fp32 with kbit_upcast)."""
    n = params.counts(config)
    other = n["total"] - n["linear"]
    if method == "qlora":
        data = n["linear"] * base_bits / 8
        constants = n["linear"] * T.nf4_bytes_per_param(double_quant=double_quant, bits=base_bits) - data
        name = "weights_nf4" if base_bits == 4 else f"weights_{base_bits}bit"
        return {name: int(data), "quant_constants": int(constants), "weights_unquantised": p["unquantised"] * other}
    if method == "lora8":
        out_rows = config["num_hidden_layers"] * sum(o for _, _, o, _ in params.linears(config))
        return {"weights_int8": n["linear"], "quant_constants": 4 * out_rows,
                "weights_unquantised": p["unquantised"] * other}
    return {"weights": p["weights"] * n["total"]}


def estimate(*, config: dict, method: str, **options) -> dict:
    """Predicted train-phase peak of one run, per device (per GPU when gpus > 1). `options` are
    the fields of bench.plan.options.Options (seq_len and batch_size required)."""
    config = presets.validate(config)
    O.check_method(method)
    o = O.build(options)
    policy = o.policy()
    p = precision.dtypes(policy, kbit_upcast=o.kbit_upcast and method in KBIT, adapter_dtype=o.adapter_dtype)
    notes = [f"precision {policy}" + (" with the k-bit fp32 upcast" if o.kbit_upcast and method in KBIT else "")]
    if method in KBIT:
        kept = "fp32 (the k-bit upcast)" if o.kbit_upcast else f"the {p['unquantised']}-byte policy dtype, no upcast"
        notes.append(f"{method}: embeddings, norms and lm_head kept in {kept}")
    tokens = o.seq_len * o.batch_size
    resident = weight_terms(config, method=method, p=p, double_quant=o.double_quant, base_bits=o.base_bits)
    if method == "base":
        moments = {"forward": {"inference": A.inference_bytes(config=config, tokens=tokens, act=p["act"])}}
        volume, unit = 0, None
        notes.append("base: no training; the peak is a forward pass without grad (scoring)")
    else:
        moments, volume, unit = _training(config, method=method, o=o, p=p, resident=resident, tokens=tokens)
    if unit and (o.gpus > 1 or o.offload != "none"):
        sharding.apply(resident, moments, gpus=o.gpus, offload=o.offload, unit=unit, notes=notes)
    return _assemble(resident, moments, o=o, forward_volume=volume, notes=notes, policy=policy)


def _training(config, *, method, o, p, resident, tokens):
    """The training moments, the forward volume (CPU allocator) and FSDP unit sizes."""
    n = params.counts(config)
    layers, full = config["num_hidden_layers"], method == "full"
    targets = target_names(config, o.target_modules) if method in PEFT else []
    out_features = {name: out for name, _, out, _ in params.linears(config)}
    if full:
        trainable, param_bytes = n["total"], p["weights"]
        largest = max(n["embed"], config["intermediate_size"] * config["hidden_size"])
        layer_trainable = (n["total"] - n["embed"] - n["lm_head"] - config["hidden_size"]) // layers
    else:
        lora = params.lora_counts(config, r=o.lora_r, targets=targets, dora=method == "dora")
        trainable, param_bytes = lora["params"], p["adapter"]
        largest = o.lora_r * max(config["intermediate_size"], config["hidden_size"])
        layer_trainable = trainable // layers
        resident["adapters"] = trainable * param_bytes
    state = int(trainable * T.optimizer_bytes_per_param(o.optimizer, param_bytes=param_bytes))
    paged = o.optimizer in T.PAGED and o.device == "cuda"  # on CPU bnb falls back to plain memory
    resident["paged_optimizer_states" if paged else "optimizer_states"] = state
    layer = A.layer_bytes(config, full=full, targets=targets, p=p, dropout=o.lora_dropout > 0,
                          lora_r=o.lora_r, dora=method == "dora", compile=o.compile, out_features=out_features)
    logits_dtype = p["act"]
    backward = {
        "activations": A.stack_bytes(config, tokens=tokens, layer=layer, p=p, full=full,
                                     checkpointing=o.grad_checkpointing, offload=o.activation_offload),
        "logits_and_loss": A.logits_bytes(config, tokens=tokens, logits_dtype=logits_dtype, loss=o.loss,
                                          compile=o.compile, keep_logits=o.keep_logits),
        "attention_mask": A.mask_bytes(batch=o.batch_size, seq=o.seq_len, packing=o.packing),
    }
    if p["autocast"]:
        backward["autocast_weight_copies"] = _autocast_copies(config, n=n, method=method, ckpt=o.grad_checkpointing)
    if method == "dora":  # dense W + scaling * B@A in the adapter dtype, per target, one at a time
        backward["dora_weight_norm"] = 3 * p["adapter"] * max(
            i * out for name, i, out, _ in params.linears(config) if name in targets)
    grads = trainable * param_bytes
    temporaries = T.optimizer_temporaries(optimizer=o.optimizer, device=o.device, trainable_bytes=grads,
                                          largest_bytes=largest * param_bytes)
    # End of backward: every gradient exists and the first layer's saved (or recomputed)
    # tensors are still alive; with the step fused into backward, only the largest gradient
    # and its step's scratch are (each is stepped and freed in its hook).
    last_layer = tokens * layer
    if o.optimizer_in_backward:
        in_flight = largest * param_bytes + min(temporaries, largest * param_bytes)
        moments = {"backward start": backward,
                   "backward end": {"gradients_in_flight": in_flight, "first_layer_activations": last_layer}}
    else:
        moments = {"backward start": backward,
                   "backward end": {"gradients": grads, "first_layer_activations": last_layer},
                   "optimizer step": {"gradients": grads, "optimizer_temporaries": temporaries}}
    # peft's lora_B output and its scaled copy, per target, before they are added to the base output
    adapter_out = 2 * sum(out_features[t] for t in targets) * layers * p["adapter"]
    volume = A.forward_volume_bytes(config=config, tokens=tokens, layer=layer, adapter_out=adapter_out,
                                    logits_dtype=logits_dtype)
    if method in KBIT and not o.grad_checkpointing:
        # bitsandbytes dequantises every weight to a transient copy, in forward and backward, between
        # saved activations; with checkpointing nothing is saved between them and the copies reuse one hole
        volume += 2 * n["linear"] * p["act"]
    unit = sharding.unit_sizes(config, n=n, method=method, p=p, full=full, layer_trainable=layer_trainable,
                               param_bytes=param_bytes, double_quant=o.double_quant)
    return moments, volume, unit


def _autocast_copies(config, *, n, method, ckpt) -> int:
    """Autocast casts each fp32 weight to 16-bit per matmul, and the matmul saves that copy for
    backward (its input needs a gradient): every decoder linear (bitsandbytes dequantises its own,
    unsaved) and lm_head; with checkpointing only the recomputed layer's linears."""
    head = config["vocab_size"] * config["hidden_size"]
    if method in KBIT:
        return 2 * head
    linear = n["linear"] // config["num_hidden_layers"] if ckpt else n["linear"]
    return 2 * (linear + head)


def _assemble(resident, moments, *, o, forward_volume, notes, policy):
    """Pick the peak moment, add the device-specific terms, and build the result dict."""
    peak_at = max(moments, key=lambda m: sum(moments[m].values()))
    transient = {k: v for k, v in moments[peak_at].items() if v}
    paged = resident.pop("paged_optimizer_states", 0)
    terms = {**{k: v for k, v in resident.items() if v or k.startswith("weights")}, **transient}
    allocated = int(sum(terms.values()))
    if o.device == "cpu":
        terms["baseline"] = CPU_BASELINE_BYTES if o.baseline_bytes is None else int(o.baseline_bytes)
        terms["allocator"] = int(CPU_ALLOCATOR_FRACTION * forward_volume)
        context = 0
        notes.append("cpu: total is peak RSS, baseline (python + torch + transformers + peft + bnb) included; "
                     f"'allocator' is glibc retention, {CPU_ALLOCATOR_FRACTION:.0%} of the forward volume, calibrated")
    else:
        dynamic = resident.get("optimizer_states", 0) + sum(transient.values())
        terms["allocator"] = int(CUDA_ALLOCATOR_FRACTION * dynamic)
        context = CUDA_CONTEXT_BYTES
        notes.append(f"cuda: total predicts max_memory_reserved; device_bytes adds paged optimizer state and "
                     f"the CUDA context ({CUDA_CONTEXT_BYTES / 2**20:.0f} MiB, assumed, not measured)")
    if paged:
        notes.append(f"{o.optimizer}: state in CUDA managed memory, outside torch's reserved figure (paged_bytes)")
    terms = {k: int(v) for k, v in terms.items()}
    total = sum(terms.values())
    components = {**resident, **({"paged_optimizer_states": paged} if paged else {})}
    for moment in moments.values():
        components.update(moment)
    return {"total_bytes": total, "allocated_bytes": allocated, "paged_bytes": int(paged),
            "device_bytes": total + int(paged) + context, "context_bytes": context, "peak_at": peak_at,
            "policy": policy, "forward_volume_bytes": int(forward_volume), "terms": terms,
            "components": {k: int(v) for k, v in components.items()},
            "notes": notes}
