"""FSDP loading that fits: the checkpoint is read once, by rank 0, and each rank keeps its shard.

Without this, each of N ranks loads the whole model before fully_shard cuts it, so a node needs
N whole copies at once (Llama-2-70B in 4 bits: ~35 GB per rank, on 24 GB cards). As accelerate's
`cpu_ram_efficient_loading` does for FSDP2:
  1. rank 0 builds the model exactly as a single process does (bench.training.methods), in host memory,
     and keeps its state dict; every rank, rank 0 included, then builds the same model on the
     meta device (structure only: no memory, no file read);
  2. every rank shards the meta model (bench.training.distributed, fully_shard);
  3. rank 0 broadcasts one full tensor at a time and each rank keeps its own slice
     (`set_model_state_dict(..., StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))`);
  4. the non-persistent buffers a state dict leaves out (rotary `inv_freq`) come from rank 0 too.
Rank 0 still reads the checkpoint as one process does (its host memory holds the whole model,
as in accelerate's recipe); the other ranks hold their shard plus one tensor in flight.

A 4-bit base (qlora) needs one more thing: bitsandbytes keeps each layer's quantisation state
(absmax, code, the nested statistics) outside the parameters, so rank 0 sends it, with each
packed weight's shape, before the meta model is built; the meta ranks build the quantised
structure with transformers' own quantizer and take rank 0's packed weights like any other.
(accelerate's loading skips 4-bit models.) lora8 runs under DDP, where every rank loads.
On a CUDA run rank 0 quantises each weight on its own GPU and keeps the packed result in host
memory (`quantising_on`): bitsandbytes' CPU kernel manages ~10 M weights/s, tens of minutes at
70B while the other ranks wait.
"""

from contextlib import contextmanager
from itertools import chain

from bench.method_table import FSDP_SHARDABLE



def applies(spec: dict) -> bool:
    """Whether this run loads on rank 0 only: FSDP, with a base FSDP can shard (not lora8)."""
    return spec.get("strategy") == "fsdp" and spec["method"] in FSDP_SHARDABLE


def build(spec: dict, *, rank: int) -> tuple:
    """(meta model, rank 0's full state or None). Rank 0 loads the real model to host memory
    first and keeps its tensors; the real module itself is dropped. Collective: a 4-bit base's
    packed shapes and quantisation state go from rank 0 to every rank here."""
    import torch.distributed as dist

    from bench.training import methods

    full, quantised = None, [None]
    if rank == 0:
        with quantising_on(quantise_device(spec)):
            loaded = methods.build(dict(spec, device="cpu"))
        kept = {name for name, _ in chain(loaded.named_parameters(remove_duplicate=False),
                                          loaded.named_buffers(remove_duplicate=False))}
        # a 4-bit layer's state_dict() adds its quantisation state as extra keys: sent apart
        full = {"state": {k: v for k, v in loaded.state_dict().items() if k in kept},
                "buffers": _non_persistent_buffers(loaded)}
        quantised = [_quantisation_states(loaded)]
        del loaded
    dist.broadcast_object_list(quantised, src=0)
    model = methods.build(dict(spec, device="meta"))
    _as_quantised(model, quantised[0])
    return model, full


def distribute(model, full: dict | None, *, rank: int) -> None:
    """Fill the sharded meta `model` from rank 0's `full` state (None on other ranks), in place.
    Collective: every rank calls it. Raises RuntimeError if any tensor is left on meta."""
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    shared = _shared_parameters(model)
    set_model_state_dict(model, full["state"] if rank == 0 else {},
                         options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
    for first, *others in shared:  # loading assigns each name its own tensor: tie them again
        for name in others:
            owner, _, leaf = name.rpartition(".")
            model.get_submodule(owner)._parameters[leaf] = model.get_parameter(first)
    buffers = [full["buffers"] if rank == 0 else None]
    dist.broadcast_object_list(buffers, src=0)
    device = next(_local(p) for p in model.parameters()).device
    for name, tensor in buffers[0].items():
        owner, _, leaf = name.rpartition(".")
        model.get_submodule(owner).register_buffer(leaf, tensor.to(device), persistent=False)
    for layer in model.modules():  # 4-bit layers: their quantisation state goes where the weights went
        state = getattr(layer, "quant_state", None)
        if state is not None and hasattr(state, "to"):
            state.to(device)
    left = [name for name, t in chain(model.named_parameters(), model.named_buffers()) if _local(t).is_meta]
    if left:
        raise RuntimeError(f"rank {rank}: {len(left)} tensors still on the meta device after loading, e.g. {left[0]}")


def quantise_device(spec: dict):
    """Where rank 0 quantises its 4-bit weights: the rank's GPU on a CUDA run (spec placed by
    bench.training.distributed: "cuda:LOCAL_RANK"), the CPU otherwise."""
    import torch

    device = torch.device(spec["device"])
    return device if device.type == "cuda" else torch.device("cpu")


@contextmanager
def quantising_on(device):
    """Within, a 4-bit weight moved to the CPU is quantised on `device` and comes back packed.

    bitsandbytes quantises a Params4bit where it is moved (`Params4bit.to` -> `_quantize(device)`),
    and transformers and bench.models.shape_load move each weight to where the model is kept:
    the CPU, for rank 0's host copy. Here each weight goes to `device` alone, is quantised there,
    and its packed data and quantisation state return to the CPU, so the GPU holds one layer's
    unquantised weight at a time; the cached blocks are released at the end."""
    import torch
    from bitsandbytes.nn import Params4bit

    if device.type == "cpu":
        yield
        return
    original = Params4bit._quantize

    def _quantize(self, target):
        if torch.device(target).type != "cpu":
            return original(self, target)
        original(self, device)
        self.data = self.data.to(target)
        self.quant_state.to(target)  # in place; the module's reference is the same object
        return self

    Params4bit._quantize = _quantize
    try:
        yield
    finally:
        Params4bit._quantize = original
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _quantisation_states(model) -> dict:
    """{module name: (packed shape, storage dtype, quant_state as a dict)} of each 4-bit layer."""
    import bitsandbytes as bnb

    return {name: (tuple(m.weight.shape), m.weight.dtype, m.weight.quant_state.as_dict(packed=True))
            for name, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)}


def _as_quantised(model, states: dict) -> None:
    """Give each 4-bit layer of a meta model rank 0's packed shape and quantisation state, so its
    parameters shard as rank 0's do and its forward can dequantise what it receives."""
    import torch
    from bitsandbytes.functional import QuantState
    from bitsandbytes.nn import Params4bit

    for name, (shape, dtype, packed) in states.items():
        layer = model.get_submodule(name)
        state = QuantState.from_dict(packed, device=torch.device("cpu"))
        layer.weight = Params4bit(torch.empty(shape, dtype=dtype, device="meta"), requires_grad=False,
                                  quant_state=state, blocksize=state.blocksize, compress_statistics=state.nested,
                                  quant_type=state.quant_type, quant_storage=dtype, module=layer, bnb_quantized=True)
        layer.quant_state = state


def _shared_parameters(model) -> list:
    """[[name, name, ...]] of each parameter held under several names (tied embeddings), first
    name first: the owner FSDP2 treats as primary for it."""
    names = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(name)
    return [group for group in names.values() if len(group) > 1]


def _non_persistent_buffers(model) -> dict:
    """{qualified name: tensor} of the buffers model.state_dict() leaves out."""
    out = {}
    for module_name, module in model.named_modules():
        for leaf in getattr(module, "_non_persistent_buffers_set", ()):
            tensor = module._buffers.get(leaf)
            if tensor is not None:
                out[f"{module_name}.{leaf}" if module_name else leaf] = tensor.detach().cpu()
    return out


def _local(tensor):
    """A DTensor's local shard, or the tensor itself."""
    return getattr(tensor, "_local_tensor", tensor)
