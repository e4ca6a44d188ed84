"""Where a training step's memory goes, measured: one extra, profiled step after the timed ones.

    record["memory"]["breakdown"] = measure(model=..., micro_batches=..., optimizer=..., ...)

The step repeats the last timed step's micro-batches (same shapes, so the same tensor peak) under
torch.profiler with profile_memory, forward, backward and optimizer step included; the profiler's
memory profile attributes the peak (bench.measure.attribution). It is taken after the timed steps,
so throughput and loss never include it, and with every learning rate set to 0:

- AdamW's update at lr 0 is `p * (1 - 0 * wd)` and `p + (-0) * (m / (sqrt(v) + eps))`: p exactly,
  so the parameters that get scored are bit-identical (tests/test_breakdown.py checks it per
  method, and `measure` checks a fingerprint of every parameter, trainable or frozen, and of
  bitsandbytes' quantisation constants, and raises if any moved);
- the step still allocates exactly what a real step does (gradients, optimizer temporaries and
  state updates all happen), which a step without the optimizer, or on a copy of the state
  (one more copy of it alive), would not;
- the torch RNG state is restored afterwards, so dropout draws in this step change nothing later.
The optimizer's moments and step counts do move; nothing reads them after training.

The step runs in train mode, so bitsandbytes keeps its training layout on every CPU. (On a CPU with
avx512_bf16, bitsandbytes 0.50 repacks a 4-bit weight for its fused CPU kernel at the first forward
in eval mode without gradients: nibbles reordered, the double-quantised absmax expanded to bf16.
That happens at evaluation, after this step; the fingerprint would see it, as it sees any change.)

`measured_peak_bytes` is the caller's measured peak of the timed steps: on CPU the train phase's
peak RSS (the profiler's own event records would inflate the profiled step's RSS, so that figure
is kept beside it, not used), on CUDA the train phase's max_memory_allocated (live tensors, what
the profiler sees; the caching allocator's slack is `reserved` in the train phase figures). On
CPU the process baseline (interpreter and libraries, measured before the model loaded) is a
category of its own. Whatever the categories do not cover is `unattributed_bytes`: never hidden.
A run that cannot be broken down gets {"error": why}; this module never raises for that.
"""

import time

from bench.measure.memory import peak_rss_bytes, reset_peak_rss

TOOL = "torch.profiler memory timeline (profile_memory=True, with_stack=True)"


class ModelChanged(RuntimeError):
    """The profiled step moved a parameter or a quantisation constant: the model about to be scored is not
    the one trained."""


def measure(*, model, micro_batches: list, optimizer, policy, device: str, measured_peak_bytes: int,
            baseline_bytes: int | None = None) -> dict:
    """memory.breakdown for one run, or {"error": one line}. Raises ModelChanged only if the step
    changed a parameter or a quantisation constant (a bug: never silently score a different model)."""
    import torch

    before = fingerprint(model)
    rng = torch.get_rng_state(), (torch.cuda.get_rng_state_all() if device.startswith("cuda") else None)
    lrs = [group["lr"] for group in optimizer.param_groups]
    try:
        for group in optimizer.param_groups:
            group["lr"] = 0.0
        result = _profile(model, micro_batches, optimizer=optimizer, policy=policy, device=device)
    except Exception as exc:  # the run's figures stand; only the breakdown is missing
        optimizer.zero_grad(set_to_none=True)
        result = {"error": f"profiled step failed: {exc.__class__.__name__}: {' '.join(str(exc).split())}"[:300]}
    finally:
        for group, lr in zip(optimizer.param_groups, lrs):
            group["lr"] = lr
        torch.set_rng_state(rng[0])
        if rng[1] is not None:
            torch.cuda.set_rng_state_all(rng[1])
    if fingerprint(model) != before:
        raise ModelChanged("the profiled breakdown step changed the model's parameters or quantisation constants "
                           "at learning rate 0")
    if "error" in result:
        return result
    return _assemble(result, device=device, measured_peak_bytes=measured_peak_bytes, baseline_bytes=baseline_bytes)


def fingerprint(model) -> tuple:
    """An exact integer checksum of what gets scored: per parameter (trainable or frozen) and per
    quantisation constant, its shape and the sum of its raw bits (no float rounding)."""
    from bench.measure.attribution import quant_constants

    tensors = list(model.parameters())
    for module in model.modules():
        tensors += quant_constants(getattr(module, "weight", None), module)
    return tuple(_checksum(t) for t in tensors)


CHECKSUM_CHUNK = 1 << 22  # elements summed at a time: torch widens an integer sum to int64 (32 MiB here)


def _checksum(tensor, *, chunk: int = CHECKSUM_CHUNK) -> tuple:
    """Shape, dtype and the sum of the raw bits, summed `chunk` elements at a time: summing a
    whole tensor at once widened an 8B model's 525M-element embedding to a 4.2 GB int64 copy,
    and the run ended as an oom in its breakdown."""
    import torch

    ints = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
    flat = tensor.detach().reshape(-1)
    bits = flat.view(ints[flat.element_size()])
    total = sum(int(bits[i:i + chunk].sum()) for i in range(0, bits.numel(), chunk))
    return tuple(tensor.shape), str(tensor.dtype), total


def _profile(model, micro_batches, *, optimizer, policy, device) -> dict:
    """Run the step under the profiler; return the attribution and the profiled step's own figures."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from bench.training import precision as P
    from bench.measure import attribution
    from bench.training.loop import supervised_tokens

    cuda = device.startswith("cuda")
    count = max(sum(supervised_tokens(b) for b in micro_batches), 1)
    placed = [{k: v.to(device) for k, v in b.items() if k in ("input_ids", "attention_mask", "labels")}
              for b in micro_batches]  # before profiling: the batch is named by identity, as on CPU
    storages = attribution.storage_names(model, device=device, inputs=[t for b in placed for t in b.values()])
    scaler = P.grad_scaler(policy, device)
    model.train()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    reset_peak_rss()
    start = time.perf_counter()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities, profile_memory=True, record_shapes=True, with_stack=True) as prof:
        for i, inputs in enumerate(placed, start=1):
            with record_function(f"{attribution.MARKER}forward.{i}"), P.autocast(policy, device):
                loss = model(**inputs, num_items_in_batch=count).loss
            with record_function(f"{attribution.MARKER}backward.{i}"):
                (scaler.scale(loss) if scaler is not None else loss).backward()
            del loss
        with record_function(f"{attribution.MARKER}optimizer_step"):
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
    step_s = time.perf_counter() - start
    step_peak = torch.cuda.max_memory_allocated() if cuda else peak_rss_bytes()
    profile_ = prof._memory_profile()
    where = f"cuda:{torch.cuda.current_device()}" if cuda else "cpu"
    found = attribution.at_peak(profile_, device=where, storages=storages)
    found["instant"] = attribution.phase_at(profile_, found.pop("peak_ns"))
    found["profiled_step"] = {"peak_bytes": step_peak, "wall_s": step_s,
                              "what": "max_memory_allocated" if cuda else "peak RSS, profiler records included"}
    return found


def _assemble(found: dict, *, device: str, measured_peak_bytes: int, baseline_bytes) -> dict:
    categories = dict(found["categories"])
    if not device.startswith("cuda") and baseline_bytes:
        categories["process_baseline"] = int(baseline_bytes)
    unattributed = int(measured_peak_bytes) - sum(categories.values())
    return {
        "instant": {**found["instant"], "tensor_bytes": found["tensor_bytes"]},
        "tool": TOOL,
        "categories": categories,
        "measured_peak_bytes": int(measured_peak_bytes),
        "measured": "train phase max_memory_allocated" if device.startswith("cuda") else "train phase peak RSS",
        "unattributed_bytes": unattributed,
        "unattributed_share": unattributed / measured_peak_bytes if measured_peak_bytes else None,
        "tool_max_bytes": found["tool_max_bytes"],
        "owned_unprofiled_bytes": found["owned_unprofiled_bytes"],
        "profiled_step": found["profiled_step"],
    }
