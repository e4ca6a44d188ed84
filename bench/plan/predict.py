"""Predict the train-phase peak memory of one run from its model config alone (no torch).

The peak is the larger of two moments of a training step (gradients are set to None between
steps, so none are alive when the forward pass runs):
  backward start:  resident state + saved activations + logits/loss copies
  optimizer step:  resident state + gradients + the optimizer's temporaries
where resident state = weights + adapters + optimizer states (alive from the first step on).
`terms` lists what is alive at the peak moment, so they sum to `total_bytes`;
`components` lists every term whatever the moment.

`total_bytes` predicts what the harness measures: on CPU the process's peak RSS (baseline
interpreter + libraries included); on CUDA `torch.cuda.max_memory_reserved`, which excludes the
CUDA context. `device_bytes` adds the context: that is what must fit on a GPU.
"""

from bench.errors import BenchError, choices_error
from bench.plan import params, presets, terms as T
from bench.schema import METHODS

OPTIMIZERS = ("adamw_torch", "adamw_8bit", "paged_adamw", "paged_adamw_8bit")
DEVICES = ("cpu", "cuda")
OFFLOADS = ("none", "optimizer", "all")
PEFT = ("lora", "qlora", "dora", "lora8")

# CPU: RSS of python + torch + transformers + peft + bitsandbytes after a model class is loaded.
# Measured here (tmp calibration, smollm2-135m): RSS after load minus the fp32 weights =
# 1,038,295,040 - 538,060,032 = 500,235,008 B (477 MiB); FACTS.md has 423 MiB before any load.
CPU_BASELINE_BYTES = 500_000_000
# CPU: glibc keeps freed forward-pass memory resident (heap holes between saved tensors), so peak
# RSS exceeds the live bytes. Modelled as a fraction of the forward volume
# (terms.forward_volume_bytes); 0.45 is the least-max-error fit over 8 measured smollm2-135m runs
# (full/lora/qlora/lora8/dora, checkpointing on/off, 512 and 1024 tokens): max |error| 6.5%.
# See docs/plan.md, "Calibration".
CPU_ALLOCATOR_FRACTION = 0.45
# CUDA: context + cuBLAS/cuDNN workspaces as seen by nvidia-smi, outside torch's reserved pool.
# Typical for torch 2.x on CUDA 12 (H100/H200, A100, RTX 4090): 0.5-1 GB; we take 768 MiB, the
# middle. Not measured here (no GPU on this machine).
CUDA_CONTEXT_BYTES = 768 * 2**20
# CUDA: caching-allocator rounding/fragmentation, reserved over allocated, as a fraction of what
# is allocated and freed while training (optimizer states and the transient peak); weights are
# allocated once at load in large blocks. Not calibrated here (no GPU).
CUDA_ALLOCATOR_FRACTION = 0.05


def _check(*, method, seq_len, batch_size, optimizer, compute_dtype, device, lora_r, gpus, offload):
    if method not in METHODS:
        raise choices_error("method", method, METHODS)
    for name, value in (("sequence length", seq_len), ("batch size", batch_size),
                        ("lora_r", lora_r), ("gpus", gpus)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise BenchError(f"{name} must be a positive integer, got {value!r}")
    if optimizer not in OPTIMIZERS:
        raise choices_error("optimizer", optimizer, OPTIMIZERS)
    if compute_dtype not in T.DTYPE_BYTES:
        raise choices_error("compute dtype", compute_dtype, tuple(T.DTYPE_BYTES))
    if device not in DEVICES:
        raise choices_error("device", device, DEVICES)
    if offload not in OFFLOADS:
        raise choices_error("offload", offload, OFFLOADS)


def weight_terms(config: dict, *, method: str, compute_dtype: str, double_quant: bool = True,
                 base_bits: int = 4) -> dict:
    """Frozen or trained base weights by storage type. bitsandbytes quantises only the decoder
    Linear weights; embeddings, norms, biases and lm_head stay unquantised, and peft's
    prepare_model_for_kbit_training upcasts those to fp32 (4 bytes)."""
    n = params.counts(config)
    dtype_bytes = T.DTYPE_BYTES[compute_dtype]
    other = n["total"] - n["linear"]
    if method == "qlora":
        data = n["linear"] * base_bits / 8
        constants = n["linear"] * T.nf4_bytes_per_param(double_quant=double_quant, bits=base_bits) - data
        name = "weights_nf4" if base_bits == 4 else f"weights_{base_bits}bit"
        return {name: int(data), "quant_constants": int(constants), "weights_unquantised": 4 * other}
    if method == "lora8":
        out_rows = config["num_hidden_layers"] * sum(o for _, _, o, _ in params.linears(config))
        return {"weights_int8": n["linear"], "quant_constants": 4 * out_rows, "weights_unquantised": 4 * other}
    return {"weights": dtype_bytes * n["total"]}


def estimate(*, config: dict, method: str, seq_len: int, batch_size: int, grad_checkpointing: bool,
             optimizer: str = "adamw_torch", compute_dtype: str = "bfloat16", device: str = "cuda",
             lora_r: int = 8, target_modules="all-linear", double_quant: bool = True,
             gpus: int = 1, offload: str = "none", base_bits: int = 4, baseline_bytes=None,
             lora_dropout: float = 0.0) -> dict:
    """Predicted train-phase peak for one run, per device (per GPU when gpus > 1).

    gpus > 1 models FSDP: weights, gradients and optimizer states are sharded over the GPUs;
    activations and logits are not. offload='optimizer' keeps optimizer states in CPU memory;
    'all' also keeps weights and gradients there, leaving two layers' weights (the one computing
    and the one prefetched) on the GPU. base_bits=2 prices a hypothetical 2-bit base (HQQ/AQLM
    style) with the same block-constant overhead as NF4. baseline_bytes (CPU) replaces the
    built-in interpreter+libraries figure with a measured one."""
    config = presets.validate(config)
    _check(method=method, seq_len=seq_len, batch_size=batch_size, optimizer=optimizer,
           compute_dtype=compute_dtype, device=device, lora_r=lora_r, gpus=gpus, offload=offload)
    notes = []
    n = params.counts(config)
    dtype_bytes = T.DTYPE_BYTES[compute_dtype]
    tokens = seq_len * batch_size
    peft = method in PEFT
    resident = weight_terms(config, method=method, compute_dtype=compute_dtype,
                            double_quant=double_quant, base_bits=base_bits)
    if method == "base":
        moments = {"forward": {"inference": T.inference_bytes(config=config, tokens=tokens, dtype_bytes=dtype_bytes)}}
        trainable, param_bytes, largest, volume = 0, dtype_bytes, 0, 0
        notes.append("base: no training; the peak is a forward pass without grad (scoring)")
    else:
        if peft:
            lora = params.lora_counts(config, r=lora_r, targets=target_modules, dora=method == "dora")
            # peft's autocast_adapter_dtype keeps adapters in fp32 even on a 16-bit base
            trainable, param_bytes = lora["params"], 4
            largest = 0
            resident["adapters"] = 4 * trainable
            layer = T.layer_activation_elements(
                config, peft=True, lora_r=lora_r, lora_targets=lora["targets"] // config["num_hidden_layers"],
                dora_out=lora["target_out_features"] // config["num_hidden_layers"] if method == "dora" else 0)
        else:
            trainable, param_bytes = n["total"], dtype_bytes
            largest = max(n["embed"], config["intermediate_size"] * config["hidden_size"])
            layer = T.layer_activation_elements(config, peft=False)
        resident["optimizer_states"] = int(trainable * T.optimizer_bytes_per_param(optimizer, param_bytes=param_bytes))
        volume = T.forward_volume_bytes(
            config=config, tokens=tokens, dtype_bytes=dtype_bytes, layer_elements=layer,
            adapter_out=lora["target_out_features"] if peft else 0)
        activations = T.activation_bytes(config=config, tokens=tokens, dtype_bytes=dtype_bytes,
                                         checkpointing=grad_checkpointing, layer_elements=layer)
        dropout = T.lora_dropout_bytes(tokens=tokens, target_in_features=lora["target_in_features"],
                                       dtype_bytes=dtype_bytes, dropout=lora_dropout) if peft else 0
        if grad_checkpointing:  # recomputed per layer: one layer's worth is alive at a time
            dropout //= config["num_hidden_layers"]
        volume += dropout
        grads = trainable * param_bytes
        moments = {
            "backward start": {"activations": activations, "logits_and_loss": T.logits_bytes(config=config, tokens=tokens),
                               **({"lora_dropout": dropout} if dropout else {})},
            "optimizer step": {"gradients": grads,
                               "optimizer_temporaries": _optimizer_temporaries(
                                   optimizer=optimizer, device=device, trainable_bytes=grads,
                                   largest_bytes=largest * param_bytes)},
        }
        if optimizer.startswith("paged"):
            notes.append(f"{optimizer}: same bytes as its base optimizer, but in CUDA unified memory that "
                         "pages to CPU under pressure (on CPU bnb falls back to non-paged)")
        if peft and method in ("qlora", "lora8"):
            notes.append("prepare_model_for_kbit_training upcasts embeddings, norms and lm_head to fp32")
    _shard(resident, moments, gpus=gpus, offload=offload, config=config, method=method,
           dtype_bytes=dtype_bytes, notes=notes)
    return _assemble(resident, moments, device=device, baseline_bytes=baseline_bytes,
                     forward_volume=volume, notes=notes)


def _optimizer_temporaries(*, optimizer, device, trainable_bytes, largest_bytes):
    """torch AdamW on CUDA uses the foreach path: one param-sized temporary list (sqrt of
    exp_avg_sq) over all trainable params. On CPU it loops per tensor: about two temporaries the
    size of the largest one. bnb optimizers update in one fused kernel per tensor: none."""
    if optimizer != "adamw_torch":
        return 0
    return trainable_bytes if device == "cuda" else 2 * largest_bytes


def _shard(resident, moments, *, gpus, offload, config, method, dtype_bytes, notes):
    """Apply FSDP sharding (divides state, not activations) and CPU offload, in place."""
    weight_keys = [k for k in resident if k.startswith("weights") or k in ("quant_constants", "adapters")]
    if offload in ("optimizer", "all"):
        resident["optimizer_states"] = 0
        moments.get("optimizer step", {}).update(optimizer_temporaries=0)
        notes.append("optimizer states offloaded to CPU memory (the CPU must hold them; steps get slower)")
    if offload == "all":
        layer_share = 2 / config["num_hidden_layers"]  # the layer computing and the one prefetched
        for key in weight_keys:
            resident[key] = int(resident[key] * layer_share)
        if "optimizer step" in moments:
            moments["optimizer step"]["gradients"] = int(moments["optimizer step"]["gradients"] * layer_share)
        notes.append("weights and gradients offloaded to CPU; two layers' weights stay on the GPU")
    if gpus > 1:
        for key in weight_keys + ["optimizer_states"]:
            if key in resident:
                resident[key] = -(-resident[key] // gpus)
        if "optimizer step" in moments:
            step = moments["optimizer step"]
            step["gradients"] = -(-step["gradients"] // gpus)
            step["optimizer_temporaries"] = -(-step["optimizer_temporaries"] // gpus)
        notes.append(f"FSDP over {gpus} GPUs: weights, gradients and optimizer states sharded; "
                     "activations and logits are not (figures are per GPU; gathering one layer adds a little)")


def _assemble(resident, moments, *, device, baseline_bytes, forward_volume, notes):
    """Pick the peak moment, add the device-specific terms, and build the result dict."""
    peak_at = max(moments, key=lambda m: sum(moments[m].values()))
    transient = moments[peak_at]
    terms = {**resident, **transient}
    transient_total = sum(transient.values())
    if device == "cpu":
        terms["baseline"] = CPU_BASELINE_BYTES if baseline_bytes is None else int(baseline_bytes)
        terms["allocator"] = int(CPU_ALLOCATOR_FRACTION * forward_volume)
        context = 0
        notes.append("cpu: total is peak RSS, baseline (python + torch + transformers + peft + bnb) included; "
                     f"'allocator' is glibc retention, {CPU_ALLOCATOR_FRACTION:.0%} of the forward volume, calibrated")
    else:
        dynamic = resident.get("optimizer_states", 0) + transient_total
        terms["allocator"] = int(CUDA_ALLOCATOR_FRACTION * dynamic)
        context = CUDA_CONTEXT_BYTES
        notes.append(f"cuda: total predicts max_memory_reserved; device_bytes adds the CUDA context "
                     f"({CUDA_CONTEXT_BYTES / 2**20:.0f} MiB, assumed, not measured)")
    terms = {k: int(v) for k, v in terms.items()}
    total = sum(terms.values())
    components = {**resident}
    for moment in moments.values():
        components.update(moment)
    return {"total_bytes": total, "device_bytes": total + context, "context_bytes": context,
            "peak_at": peak_at, "terms": terms, "components": {k: int(v) for k, v in components.items()},
            "notes": notes}
