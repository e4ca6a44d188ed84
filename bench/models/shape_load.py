"""Load a shape model (bench.models.shape) one decoder layer at a time, in the worker.

The model is built on the meta device (buffers real, then moved to the run's device), with bitsandbytes'
4-bit or 8-bit layers
already in place when the method asks for them (transformers' own quantizer). Then each shard,
one decoder layer, is read tensor by tensor with pread, cast to the policy's weight dtype,
quantised where the layer is quantised, and assigned; freed memory goes back to the OS after
each layer. The load peak is so the loaded model's (4-bit for QLoRA) plus one layer, never a
bf16 copy of the whole model, which transformers' from_pretrained would read first
(disable_mmap) or map into the resident set (mmap).

bitsandbytes quantises on this CPU at about 10 M weights/s (an 8B model's linears: minutes), so
the NF4 weights and their quantisation state are cached beside the shape, one file per shard
(`nf4-<settings>/`), the first time a 4-bit run loads it; later runs read them instead.
"""

import json
import os
from pathlib import Path

import torch


def load_shape(model_path, *, dtype, device: str = "cpu", quantization_config=None, trust_remote_code: bool = False):
    """The shape model at `model_path` with its cached weights on `device`, in `dtype`, quantised
    per `quantization_config`."""
    model = _on_meta(model_path, dtype=dtype, quantization_config=quantization_config,
                     trust_remote_code=trust_remote_code)
    modules = dict(model.named_modules())
    index = json.loads((Path(model_path) / "model.safetensors.index.json").read_text())
    cache = quantised_cache(model_path, quantization_config=quantization_config, dtype=dtype)
    if cache is not None:
        cache.mkdir(exist_ok=True)
    for file in sorted(set(index["weight_map"].values())):
        _load_shard(Path(model_path) / file, modules=modules, dtype=dtype, device=device,
                    cached=None if cache is None else cache / file)
    model.tie_weights()
    _buffers_to(model, device)
    left = [name for name, p in model.named_parameters() if p.device.type == "meta"] if device != "meta" else []
    if left:
        raise RuntimeError(f"shape model {model_path}: {len(left)} parameters not in its checkpoint, e.g. {left[0]}")
    return model.eval()


def _buffers_to(model, device: str) -> None:
    """The buffers the meta build made real on the CPU (rotary inv_freq, non-persistent: in no
    checkpoint) go to the run's device: left on the CPU, DDP broadcasts them over NCCL, which
    takes no CPU tensor, and every forward copies them to the GPU."""
    for module in model.modules():
        for name, buffer in module._buffers.items():
            if buffer is not None and buffer.device != torch.device(device):
                module._buffers[name] = buffer.to(device)


def _on_meta(model_path, *, dtype, quantization_config, trust_remote_code):
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    with init_empty_weights(include_buffers=False):  # rotary inv_freq and other buffers stay real
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, trust_remote_code=trust_remote_code)
    if quantization_config is not None:
        from transformers.quantizers import AutoHfQuantizer

        quantizer = AutoHfQuantizer.from_config(quantization_config, pre_quantized=False)
        quantizer.preprocess_model(model, device_map=None)
        quantizer.postprocess_model(model)
        model.hf_quantizer, model.config.quantization_config = quantizer, quantization_config
    return model


def quantised_cache(model_path, *, quantization_config, dtype) -> Path | None:
    """Where this shape's 4-bit weights for these settings are cached; None when nothing is 4-bit."""
    if quantization_config is None or not getattr(quantization_config, "load_in_4bit", False):
        return None
    qc = quantization_config
    storage = str(getattr(qc, "bnb_4bit_quant_storage", "uint8")).replace("torch.", "")
    return Path(model_path) / (f"{qc.bnb_4bit_quant_type}-dq{int(qc.bnb_4bit_use_double_quant)}-"
                               f"{storage}-from-{str(dtype).replace('torch.', '')}")


def _load_shard(file: Path, *, modules: dict, dtype, device: str, cached: Path | None) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    from bench.measure.memory import release_memory

    done = _read_quantised(cached, modules=modules, device=device) if cached is not None and cached.exists() else set()
    to_cache = {}
    with safe_open(str(file), framework="pt", device="cpu", backend="pread") as handle:
        for name in handle.keys():
            if name in done:
                continue
            tensor = handle.get_tensor(name)
            if tensor.is_floating_point() and tensor.dtype != dtype:
                tensor = tensor.to(dtype)
            owner, attr = name.rsplit(".", 1)
            param = _assign(modules[owner], attr, tensor, device=device)
            del tensor
            if cached is not None and getattr(param, "quant_state", None) is not None:
                to_cache[name] = param.data
                to_cache.update({f"{name}::{k}": v for k, v in param.quant_state.as_dict(packed=True).items()})
    if to_cache:  # written whole, then renamed: a parallel run sees all of it or none
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        save_file({k: v.contiguous().cpu() for k, v in to_cache.items()}, str(tmp))
        os.replace(tmp, cached)
    release_memory()  # this layer's source tensors go back to the OS before the next is read


def _read_quantised(cached: Path, *, modules: dict, device: str) -> set:
    """Put the cached 4-bit weights of one shard in place; the names of the weights done."""
    import bitsandbytes as bnb
    from safetensors import safe_open

    with safe_open(str(cached), framework="pt", device="cpu", backend="pread") as handle:
        keys = list(handle.keys())
        names = [k for k in keys if "::" not in k]
        for name in names:
            stats = {k.split("::", 1)[1]: handle.get_tensor(k) for k in keys if k.startswith(name + "::")}
            owner, attr = name.rsplit(".", 1)
            module = modules[owner]
            module._parameters[attr] = bnb.nn.Params4bit.from_prequantized(
                handle.get_tensor(name), stats, requires_grad=False, device=device, module=module)
    return set(names)


def _assign(module, attr: str, tensor, *, device: str):
    """Put `tensor` in place of the meta parameter, quantising it where the layer is quantised."""
    import bitsandbytes as bnb

    old = module._parameters.get(attr)
    if old is None:  # a persistent buffer
        module._buffers[attr] = tensor.to(device)
        return module._buffers[attr]
    if isinstance(old, bnb.nn.Params4bit):
        module._parameters[attr] = bnb.nn.Params4bit(
            tensor, requires_grad=False, blocksize=old.blocksize, compress_statistics=old.compress_statistics,
            quant_type=old.quant_type, quant_storage=old.quant_storage, module=module).to(device)
    elif isinstance(old, bnb.nn.Int8Params):
        module._parameters[attr] = bnb.nn.Int8Params(tensor, requires_grad=False,
                                                     has_fp16_weights=old.has_fp16_weights).to(device)
    else:
        module._parameters[attr] = torch.nn.Parameter(tensor.to(device), requires_grad=old.requires_grad)
    return module._parameters[attr]
