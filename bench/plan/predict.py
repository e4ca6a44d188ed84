"""Predict the train-phase peak memory of one run from its model config alone (no torch).

The peak is the largest of the moments of a training step (gradients are set to None
between steps, so none are alive when the forward pass runs):
  backward start:  resident state + saved activations + logits/loss working set (at its peak: in
                   the loss's backward, or its forward for the eager chunked loss)
  layer recompute: with checkpointing only: resident state + every layer's kept input + the last
                   layer recomputed + the hidden state's gradient (the loss's working set is
                   gone by then: backward reaches the layers only after the loss and lm_head)
  last layer:      under FSDP without checkpointing only: every saved activation + the gradient
                   arriving + two gathered layers and the last layer's unsharded gradient
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
                   (+ NCCL's buffers under FSDP)
  headroom_bytes   what a "fits" verdict needs free beyond device_bytes (FSDP: FSDP_HEADROOM
                   of it; 0 on one device); `fits(estimate, budget)` applies it
`terms` lists what is alive at the peak moment and sums to total_bytes; `components` lists
every term whatever the moment.
"""

from bench.method_table import ADAPTER, KBIT, method as method_row
from bench.plan import activations as A, options as O, params, dtype_bytes as precision, presets, sharding, terms as T
from bench.util.errors import BenchError
from bench.util.units import mib

OPTIMIZERS, DEVICES, OFFLOADS = T.OPTIMIZERS, O.DEVICES, O.OFFLOADS

# CPU: RSS of python + torch + transformers + peft + bitsandbytes after the imports, before the
# model. The harness measures it in every record (memory.baseline_bytes) and the worker passes it
# in; this default is the median of that figure over the calibration records in
# reports/samples/plan-calibration/results.jsonl (bench.plan.calibration).
CPU_BASELINE_BYTES = 464_000_000
# CPU: glibc keeps freed forward-pass memory resident (holes between saved tensors), so peak RSS
# exceeds the live bytes. Modelled as a fraction of the forward volume
# (activations.forward_volume_bytes, plus bitsandbytes' dequantised copies); 0.465 is the
# least-max-error fit (bench.plan.calibration fit) over the 10 smollm2-135m harness records in
# reports/samples/plan-calibration/results.jsonl: in-sample max |error| 14.2%. Out of sample
# (reports/samples/plan-out-of-sample/, models the fit never saw): max 14.7%. docs/plan.md.
CPU_ALLOCATOR_FRACTION = 0.465
# CUDA: context + cuBLAS workspace as nvidia-smi sees them, outside torch's reserved pool.
# Typical for torch 2.x on CUDA 12 (H100/H200, A100, RTX 4090): 0.5-1 GB; we take 768 MiB, the
# middle. An assumption: no GPU measured it.
CUDA_CONTEXT_BYTES = 768 * 2**20
# CUDA: caching-allocator slack, reserved over allocated, as a fraction of what is allocated and
# freed while training (optimizer states and the transient peak); weights are allocated once
# in large blocks. An assumption, checked (not fitted) against the published figures in docs/plan.md.
CUDA_ALLOCATOR_FRACTION = 0.05
# CUDA, FSDP over several GPUs: NCCL's communicator buffers, allocated by NCCL outside torch's pool
# (device_bytes only). Per channel and peer connection NCCL keeps a buffer per protocol: Simple
# 4 MiB (NCCL_BUFFSIZE), LL128 about 4.7 MiB, LL 0.5 MiB, about 9.2 MiB; a ring and a tree
# connection on each of 8-16 channels (NCCL picks the count from the topology) is 150-300 MiB. We
# take 256 MiB. An assumption: no GPU measured it.
NCCL_BYTES = 256 * 2**20
# FSDP: a "fits" verdict needs device_bytes x (1 + FSDP_HEADROOM) within the budget. The FSDP rows
# of bench.plan.published are predicted at most 11.2% under what was measured (peft-fsdp-qlora-70b),
# so measured can be predicted x 1.126: 15% covers that with room (docs/plan.md).
FSDP_HEADROOM = 0.15


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
    quant = method_row(method).quant
    if quant == "nf4":
        data = n["linear"] * base_bits / 8
        constants = n["linear"] * T.nf4_bytes_per_param(double_quant=double_quant, bits=base_bits) - data
        name = "weights_nf4" if base_bits == 4 else f"weights_{base_bits}bit"
        return {name: int(data), "quant_constants": int(constants), "weights_unquantised": p["unquantised"] * other}
    if quant == "int8":
        out_rows = config["num_hidden_layers"] * sum(o for _, _, o, _ in params.linears(config))
        return {"weights_int8": n["linear"], "quant_constants": 4 * out_rows,
                "weights_unquantised": p["unquantised"] * other}
    return {"weights": p["weights"] * n["total"]}


def without_retention(predicted: dict, *, device: str, mmap_threshold) -> dict:
    """Drop the CPU allocator term from `predicted` (in place) when the run set
    MALLOC_MMAP_THRESHOLD_: the term models glibc keeping freed blocks resident, which mmap'd
    blocks are not. Every caller pricing a run that set it (the worker, report, `fit`, the
    driver's budget check) drops it here."""
    if device == "cpu" and mmap_threshold and "allocator" in predicted["terms"]:
        predicted["total_bytes"] -= predicted["terms"].pop("allocator")
        predicted.setdefault("notes", []).append("allocator retention term dropped: MALLOC_MMAP_THRESHOLD_ set")
    return predicted


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
        sharding.apply(resident, moments, gpus=o.gpus, offload=o.offload, unit=unit, notes=notes, root=o.fsdp_root)
    fsdp = unit if unit and (o.gpus > 1 or o.offload == "all") else None
    return _assemble(resident, moments, o=o, forward_volume=volume, notes=notes, policy=policy, fsdp=fsdp)


def _training(config, *, method, o, p, resident, tokens):
    """The training moments, the forward volume (CPU allocator) and FSDP unit sizes."""
    n = params.counts(config)
    layers, full = config["num_hidden_layers"], method == "full"
    targets = target_names(config, o.target_modules) if method in ADAPTER else []
    out_features = {name: out for name, _, out, _ in params.linears(config)}
    if full:
        trainable, param_bytes = n["total"], p["weights"]
        largest = max(n["embed"], config["intermediate_size"] * config["hidden_size"])
        layer_trainable = (n["total"] - n["embed"] - n["lm_head"] - config["hidden_size"]) // layers
    else:
        lora = params.lora_counts(config, r=o.lora_r, targets=targets, dora=method_row(method).dora)
        trainable, param_bytes = lora["params"], p["adapter"]
        largest = o.lora_r * max(config["intermediate_size"], config["hidden_size"])
        layer_trainable = trainable // layers
        resident["adapters"] = trainable * param_bytes
    state = int(trainable * T.optimizer_bytes_per_param(o.optimizer, param_bytes=param_bytes))
    paged = o.optimizer in T.PAGED and o.device == "cuda"  # on CPU bnb falls back to plain memory
    resident["paged_optimizer_states" if paged else "optimizer_states"] = state
    layer = A.layer_bytes(config, full=full, targets=targets, p=p, dropout=o.lora_dropout > 0,
                          lora_r=o.lora_r, dora=method_row(method).dora, compile=o.compile, out_features=out_features,
                          padded_seq=0 if o.packing else o.seq_len, seq_len=o.seq_len)
    logits_dtype = p["act"]
    stack = dict(tokens=tokens, layer=layer, p=p, full=full, checkpointing=o.grad_checkpointing,
                 offload=o.activation_offload)
    backward = {
        "activations": A.stack_bytes(config, **stack, recomputing=False),
        # the loss's working set at its peak: in its backward, or (eager chunked loss) in its forward
        "logits_and_loss": max(A.logits_bytes(config, tokens=tokens, logits_dtype=logits_dtype, loss=o.loss,
                                              compile=o.compile, keep_logits=o.keep_logits),
                               A.loss_forward_bytes(config, tokens=tokens, logits_dtype=logits_dtype, loss=o.loss,
                                                    compile=o.compile)),
        "attention_mask": A.mask_bytes(batch=o.batch_size, seq=o.seq_len, packing=o.packing),
    }
    if p["autocast"]:
        backward["autocast_weight_copies"] = _autocast_copies(config, n=n, method=method, ckpt=o.grad_checkpointing)
    if method_row(method).dora:  # dense W + scaling * B@A in the adapter dtype, per target, one at a time
        backward["dora_weight_norm"] = 3 * p["adapter"] * max(
            i * out for name, i, out, _ in params.linears(config) if name in targets)
    head_grad = config["vocab_size"] * config["hidden_size"] * param_bytes if full else 0
    if full:  # lm_head's weight gradient is made inside the loss phase, beside the logits' gradients
        backward["head_gradient"] = head_grad
    held = A.held_logits_bytes(config, tokens=tokens, logits_dtype=logits_dtype, loss=o.loss, keep_logits=o.keep_logits)
    recompute = None
    if o.grad_checkpointing:
        # The loss's backward ends (its working set freed) before the last layer is recomputed, so
        # the recomputed layer is a moment of its own: kept inputs + that layer + the gradient of
        # the hidden state coming back, with the mask and any held logits still alive.
        recompute = {"activations": A.stack_bytes(config, **stack, recomputing=True),
                     "hidden_gradient": tokens * config["hidden_size"] * p["resid"],
                     "attention_mask": backward["attention_mask"], "held_logits": held}
        if full and (config["tie_word_embeddings"] or not o.optimizer_in_backward):
            # lm_head's gradient, made in the loss phase, is alive until the step (tied: until the
            # embedding's use at the end of backward completes it, even when stepped in backward)
            recompute["head_gradient"] = head_grad
        if "autocast_weight_copies" in backward:
            recompute["autocast_weight_copies"] = backward["autocast_weight_copies"]
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
                   "backward end": {"gradients_in_flight": in_flight, "first_layer_activations": last_layer,
                                    "held_logits": held}}
    else:
        moments = {"backward start": backward,
                   "backward end": {"gradients": grads, "first_layer_activations": last_layer, "held_logits": held},
                   "optimizer step": {"gradients": grads, "optimizer_temporaries": temporaries}}
    if recompute:
        moments["layer recompute"] = recompute
    elif o.gpus > 1 or o.offload == "all":
        # Without checkpointing the last layer's backward starts with every saved tensor still alive;
        # on one device that is below the loss phase, under FSDP it also gathers a second layer and
        # makes that layer's unsharded gradient (bench.plan.sharding.BACKWARD)
        moments["last layer"] = {"activations": backward["activations"],
                                 "hidden_gradient": tokens * config["hidden_size"] * p["resid"],
                                 "attention_mask": backward["attention_mask"], "held_logits": held,
                                 **{k: backward[k] for k in ("autocast_weight_copies", "head_gradient")
                                    if k in backward}}
    # peft's lora_B output and its scaled copy, per target, before they are added to the base output
    adapter_out = 2 * sum(out_features[t] for t in targets) * layers * p["adapter"]
    volume = A.forward_volume_bytes(config=config, tokens=tokens, layer=layer, adapter_out=adapter_out,
                                    logits_dtype=logits_dtype)
    if method in KBIT and not o.grad_checkpointing and (method_row(method).quant != "nf4" or p["act"] == 4):
        # bitsandbytes dequantises every weight to a transient copy, in forward and backward, between
        # saved activations; with checkpointing nothing is saved between them and the copies reuse one hole.
        # QLoRA dequantising to 16 bits leaves no such retention: measured on CPU in bf16-true at 135M
        # (batch 4 x 128 and 1 x 256) and on the 0.5B-8B shapes (1 x 256), QLoRA's peak minus its live
        # tensors equals LoRA's; the fp32 calibration runs (135M, 4 x 128) need the copies. Re-checked
        # on runs that informed neither (docs/plan.md, "Against the scale ladder").
        volume += 2 * n["linear"] * p["act"]
    unit = sharding.unit_sizes(config, n=n, method=method, p=p, full=full, layer_trainable=layer_trainable,
                               param_bytes=param_bytes, base_bits=o.base_bits)
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


def _phase_slack(moments: dict, peak_at: str) -> int:
    """Reserved (CUDA) or resident (CPU) bytes beyond the live peak when checkpointing splits the
    backward's start into two phases: the loss's working set, then the recomputed last layer.
    Neither allocator gives the first phase's freed blocks back, and the second phase's tensors
    (other sizes, other lifetimes) refill them only in part; we count no reuse, so the pool is
    the union of the two phases. The live figure (allocated_bytes) is the larger phase alone."""
    if "layer recompute" not in moments or peak_at not in ("backward start", "layer recompute"):
        return 0
    start, again = moments["backward start"], moments["layer recompute"]
    union = sum(max(start.get(k, 0), again.get(k, 0)) for k in {*start, *again})
    if start.get("logits_and_loss"):
        union -= again.get("held_logits", 0)  # the held logits are part of the loss's working set
    return max(0, int(union - sum(moments[peak_at].values())))


def _assemble(resident, moments, *, o, forward_volume, notes, policy, fsdp=None):
    """Pick the peak moment, add the device-specific terms, and build the result dict."""
    peak_at = max(moments, key=lambda m: sum(moments[m].values()))
    transient = {k: v for k, v in moments[peak_at].items() if v}
    paged = resident.pop("paged_optimizer_states", 0)
    terms = {**{k: v for k, v in resident.items() if v or k.startswith("weights")}, **transient}
    allocated = int(sum(terms.values()))
    phases = _phase_slack(moments, peak_at)
    if phases:
        terms["allocator_phases"] = phases
    nccl = 0
    if o.device == "cpu":
        terms["baseline"] = CPU_BASELINE_BYTES if o.baseline_bytes is None else int(o.baseline_bytes)
        terms["allocator"] = int(CPU_ALLOCATOR_FRACTION * forward_volume)
        context = 0
        notes.append("cpu: total is peak RSS, baseline (python + torch + transformers + peft + bnb) included; "
                     f"'allocator' is glibc retention, {CPU_ALLOCATOR_FRACTION:.0%} of the forward volume, calibrated")
    else:
        dynamic = resident.get("optimizer_states", 0) + sum(transient.values())
        terms["allocator"] = int(CUDA_ALLOCATOR_FRACTION * dynamic)
        if fsdp:  # the unshard stream's pool: one gathered layer more than in use (bench.plan.sharding)
            terms["fsdp_stream_pool"] = int(fsdp["layer_bytes"])
        context = CUDA_CONTEXT_BYTES
        notes.append(f"cuda: total predicts max_memory_reserved; device_bytes adds paged optimizer state and "
                     f"the CUDA context ({mib(CUDA_CONTEXT_BYTES):.0f} MiB, assumed, not measured)")
        if o.gpus > 1:
            nccl = NCCL_BYTES
            notes.append(f"FSDP: device_bytes adds NCCL's buffers ({mib(NCCL_BYTES):.0f} MiB, assumed) and a "
                         f"'fits' needs {FSDP_HEADROOM:.0%} headroom beyond the prediction")
    if paged:
        notes.append(f"{o.optimizer}: state in CUDA managed memory, outside torch's reserved figure (paged_bytes)")
    terms = {k: int(v) for k, v in terms.items()}
    total = sum(terms.values())
    components = {**resident, **({"paged_optimizer_states": paged} if paged else {})}
    for moment in moments.values():
        components.update(moment)
    device = total + int(paged) + context + nccl
    return {"total_bytes": total, "allocated_bytes": allocated, "paged_bytes": int(paged),
            "device_bytes": device, "context_bytes": context, "nccl_bytes": nccl,
            "headroom_bytes": int(FSDP_HEADROOM * device) if o.gpus > 1 else 0, "peak_at": peak_at,
            "policy": policy, "forward_volume_bytes": int(forward_volume), "terms": terms,
            "components": {k: int(v) for k, v in components.items()},
            "notes": notes}


def needed_bytes(est: dict) -> int:
    """What a "fits" verdict asks of the device: device_bytes plus the stated headroom."""
    return est["device_bytes"] + est.get("headroom_bytes", 0)
