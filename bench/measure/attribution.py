"""Attribute a profiled step's memory at its peak: torch's categories, refined by storage identity.

torch.profiler's memory profile (torch.profiler._memory_profiler, the analysis behind
`export_memory_timeline`) follows every tensor of the step and gives it a category: parameter,
optimizer state, gradient, activation (made in the forward pass from the inputs and still alive),
autograd detail (made by the backward pass: gradients flowing through activations), temporary
(freed inside the op that made it), input, or none. Its own coalescing (`_coalesce_timeline`)
gives bytes per category at every instant; the peak is the instant with the largest sum.

It has one "parameter" category and does not see tensors that are not parameters, such as
bitsandbytes' quantisation constants. So each tensor alive at the peak whose storage belongs to the
model is renamed by what the model says it is: base parameters by storage (fp32, bf16, fp16, int8,
nf4), trainable adapters, quantisation constants, buffers; and the batch's tensors are `inputs`.
Everything else keeps torch's category (TOOL_NAMES).
A tensor the model owns that no op of the step touched (NF4's code table on CPU, where the
dequantisation reads its own copy) is absent from the profile but resident all the same: it is
counted from the model, under the same name, and its bytes are reported as `owned_unprofiled_bytes`.
"""

from torch.profiler._memory_profiler import Action, Category, MemoryProfileTimeline, TensorKey, _CATEGORY_TO_INDEX

# torch's category -> the record's name (None: an allocation torch could not tie to a tensor's role).
# torch's INPUT is every forward tensor that depends on no gradient: the batch, and under adapters
# also the activations computed before the first trainable weight. The batch is named by identity
# ("inputs"); the rest of INPUT is activations.
TOOL_NAMES = {
    Category.PARAMETER: "parameters_other", Category.OPTIMIZER_STATE: "optimizer_state",
    Category.INPUT: "activations", Category.TEMPORARY: "temporaries", Category.ACTIVATION: "activations",
    Category.GRADIENT: "gradients", Category.AUTOGRAD_DETAIL: "activation_gradients", None: "other_tensors",
}
SHORT_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "int8": "int8", "uint8": "uint8"}
MARKER = "ftbench."  # record_function names the profiled step puts around its phases


def storage_names(model, *, device: str, inputs=()) -> dict:
    """{storage data pointer: (record category, storage bytes)} for every tensor the model owns on
    `device` (its type: cpu or cuda), and for the step's `inputs` (the batch tensors)."""
    import torch

    kind = torch.device(device).type
    names = {_ptr(t): ("inputs", _nbytes(t), t.device.type) for t in inputs}
    peft = hasattr(model, "peft_config")
    for param in model.parameters():
        if param.requires_grad:
            name = "adapters" if peft else f"parameters_{_short(param.dtype)}"
        else:
            name = _frozen_storage(param)
        names.setdefault(_ptr(param), (name, _nbytes(param), param.device.type))
    for buffer in model.buffers():
        names.setdefault(_ptr(buffer), ("buffers", _nbytes(buffer), buffer.device.type))
    for module in model.modules():
        for tensor in quant_constants(getattr(module, "weight", None), module):
            names.setdefault(_ptr(tensor), ("quant_constants", _nbytes(tensor), tensor.device.type))
    return {ptr: (name, nbytes) for ptr, (name, nbytes, where) in names.items() if where == kind}


def _short(dtype) -> str:
    text = str(dtype).replace("torch.", "")
    return SHORT_DTYPES.get(text, text)


def _frozen_storage(param) -> str:
    quant_state = getattr(param, "quant_state", None)
    if quant_state is not None:  # bitsandbytes Params4bit: packed 4-bit codes, two per byte
        return f"parameters_{getattr(quant_state, 'quant_type', None) or '4bit'}"
    if type(param).__name__ == "Int8Params":
        return "parameters_int8"
    return f"parameters_{_short(param.dtype)}"


def quant_constants(weight, module) -> list:
    """bitsandbytes' constants beside a quantised weight: NF4 block absmax, code table and offset,
    and with double quantisation the nested absmax and code; LLM.int8's per-row scales (SCB)."""
    import torch

    found = []
    state = getattr(weight, "quant_state", None)
    while state is not None:
        found += [getattr(state, k, None) for k in ("absmax", "code", "offset")]
        state = getattr(state, "state2", None)
    found.append(getattr(weight, "SCB", None))
    found.append(getattr(getattr(module, "state", None), "SCB", None))
    return [t for t in found if isinstance(t, torch.Tensor)]


def _ptr(tensor) -> int:
    return tensor.untyped_storage().data_ptr()


def _nbytes(tensor) -> int:
    return tensor.untyped_storage().nbytes()


def at_peak(memory_profile, *, device: str, storages: dict) -> dict:
    """{"categories", "tool_max_bytes", "peak_ns", "tensor_bytes", "owned_unprofiled_bytes"}:
    categories at the instant whose summed categories are largest (`storages` is storage_names()),
    and torch's own categories, unrenamed, at their largest over the step."""
    timeline = MemoryProfileTimeline(memory_profile)
    times, sizes = timeline._coalesce_timeline(device)
    if not times:
        raise ValueError(f"the profiler recorded no memory events on {device}")
    index = max(range(len(sizes)), key=lambda i: sum(sizes[i]))
    tool = {}
    for category, i in _CATEGORY_TO_INDEX.items():  # two of torch's categories share a name: add
        tool[TOOL_NAMES[category]] = tool.get(TOOL_NAMES[category], 0) + sizes[index][i + 1]
    step_max = {(c.name.lower() if c else "uncategorised"): max(row[i + 1] for row in sizes)
                for c, i in _CATEGORY_TO_INDEX.items()}
    categories, peak_ns, unprofiled = _rename_owned(timeline, device=device, until_us=times[index],
                                                    storages=storages, tool=tool)
    return {"categories": {k: v for k, v in categories.items() if v}, "owned_unprofiled_bytes": unprofiled,
            "tool_max_bytes": {k: v for k, v in step_max.items() if v},
            "peak_ns": peak_ns, "tensor_bytes": sum(sizes[index])}


def _rename_owned(timeline, *, device: str, until_us: int, storages: dict, tool: dict) -> dict:
    """Replay the timeline to the peak (as _coalesce_timeline does) and move the bytes of every live
    tensor the model owns from torch's category to the model's name for it; add the owned tensors
    the profile never saw. Returns (categories, time in ns of the last event at the peak, bytes added)."""
    import torch

    wanted = torch.device(device)
    live, last, seen = {}, 0, set()
    for t, action, (key, version), nbytes in timeline.timeline:
        if key.device != wanted or not isinstance(key, TensorKey):
            continue
        seen.add(key.storage.ptr)
        if t != -1 and int(t / 1000) > until_us:
            break
        last = max(last, t)
        if action in (Action.PREEXISTING, Action.CREATE):
            live[key] = (version, nbytes)
        elif action == Action.INCREMENT_VERSION:
            live[key] = (version + 1, nbytes)
        elif action == Action.DESTROY:
            live.pop(key, None)
    out = dict(tool)
    for key, (version, nbytes) in live.items():
        name, _ = storages.get(key.storage.ptr, (None, 0))
        if name is None:
            continue
        was = TOOL_NAMES[timeline.categories.get(key, version)]
        out[was] -= nbytes
        out[name] = out.get(name, 0) + nbytes
    unprofiled = 0
    for ptr, (name, nbytes) in storages.items():
        if ptr not in seen:
            out[name] = out.get(name, 0) + nbytes
            unprofiled += nbytes
    return out, last, unprofiled


def phase_at(memory_profile, peak_ns: int) -> dict:
    """Which marked phase of the step (forward/backward of micro-batch i, optimizer_step) and which
    op were running at `peak_ns`, from the profiler's own event tree."""
    phase, op, op_start = None, None, -1
    for event in memory_profile._op_tree.dfs():
        if not event.start_time_ns <= peak_ns <= event.end_time_ns:
            continue
        if event.name.startswith(MARKER):
            phase = event.name[len(MARKER):]
        elif event.start_time_ns > op_start and event.name.startswith(("aten::", "bitsandbytes::")):
            op, op_start = event.name, event.start_time_ns
    name, _, micro = (phase or "unmarked").partition(".")
    return {"phase": name, "micro_batch": int(micro) if micro else None, "op": op}
