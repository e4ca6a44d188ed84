"""The fine-tuning methods: one registry, one signature.

Each method takes the resolved spec and returns the model ready to train (or, for `base`, to
score): frozen or not, quantised or not, wrapped in a peft adapter or not. What a method is
(adapter? k-bit, and which quantisation? what "auto" means for nproc > 1?) is one row of
bench.method_table.TABLE, which the schema, matrix, planner and FSDP loading read. Adding a
method is that one row, one small builder here registered in METHODS under the row's name,
and a test (tests/test_methods.py checks the builders cover exactly the table's names).

The spec carries the precision policy's resolved dtypes (bench.training.precision): `weights_dtype` for
every unquantised weight, `compute_dtype` for bitsandbytes' quantised matmuls. The adapter
methods share one path: lora, dora, qlora and lora8 differ only in how the base is loaded.
peft's prepare_model_for_kbit_training is deliberately not used: it upcasts embeddings, norms
and lm_head to fp32 for the k-bit methods alone, so QLoRA would differ from LoRA in two ways.
"""

import torch

from bench.models.random_weights import is_shape

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _load(spec: dict, **kwargs):
    from transformers import AutoModelForCausalLM

    if spec["device"] == "meta":  # FSDP ranks > 0 (bench.training.fsdp_load): the structure, no weights read
        return _on_meta(spec, **kwargs)
    if is_shape(spec.get("model")):  # random weights, read layer by layer (bench.models.shape_load)
        from bench.models.shape_load import load_shape
        return load_shape(spec["model_path"], dtype=DTYPES[spec["weights_dtype"]], device=spec["device"],
                          trust_remote_code=spec["trust_remote_code"], **kwargs)
    # disable_mmap: a mapped fp32 checkpoint would stay resident and count against 4-bit models.
    # use_safetensors: never unpickle weights.
    return AutoModelForCausalLM.from_pretrained(
        spec["model_path"], dtype=DTYPES[spec["weights_dtype"]], use_safetensors=True,
        trust_remote_code=spec["trust_remote_code"], disable_mmap=True,
        device_map=spec["device"], **kwargs,
    )


def _on_meta(spec: dict, quantization_config=None):
    """The model `_load` would return, built from its config on the meta device. A quantised base
    gets the quantised modules from_pretrained puts in (transformers' own quantizer), with empty
    weights: bench.training.fsdp_load gives them rank 0's packed weights and quantisation state."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(spec["model_path"], trust_remote_code=spec["trust_remote_code"])
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=DTYPES[spec["weights_dtype"]],
                                                 trust_remote_code=spec["trust_remote_code"])
        if quantization_config is not None:
            from transformers.quantizers import AutoHfQuantizer

            quantizer = AutoHfQuantizer.from_config(quantization_config, pre_quantized=False)
            quantizer.preprocess_model(model, device_map=None)
            quantizer.postprocess_model(model)
    return model


def _lora_config(spec: dict, **extra):
    from peft import LoraConfig

    return LoraConfig(r=spec["lora_r"], lora_alpha=spec["lora_alpha"], lora_dropout=spec["lora_dropout"],
                      target_modules=spec["target_modules"], task_type="CAUSAL_LM", **extra)


def _with_adapter(model, spec: dict, **extra):
    """Freeze the base (get_peft_model does), add the adapter; adapters stay fp32 (peft's default)."""
    from peft import get_peft_model

    if spec["grad_checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return get_peft_model(model, _lora_config(spec, **extra))


def base(spec: dict):
    model = _load(spec)
    model.requires_grad_(False)
    return model


def full(spec: dict):
    model = _load(spec)
    if spec["grad_checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def lora(spec: dict):
    return _with_adapter(_load(spec), spec)


def dora(spec: dict):
    return _with_adapter(_load(spec), spec, use_dora=True)


def qlora(spec: dict):
    # FSDP-QLoRA: FSDP shards floating-point tensors only, so the packed 4-bit weights are stored
    # in the weight dtype (bnb_4bit_quant_storage), as the transformers/peft FSDP-QLoRA recipe does.
    storage = {"bnb_4bit_quant_storage": DTYPES[spec["weights_dtype"]]} if spec.get("strategy") == "fsdp" else {}
    model = _with_adapter(_load(spec, quantization_config=nf4_config(spec, **storage)), spec)
    return _pin_4bit_compute(model, spec)


def _pin_4bit_compute(model, spec: dict):
    """On a CPU with avx512_bf16, bitsandbytes repacks a 4-bit layer at its first forward without
    gradients (scoring) and from then on multiplies in bf16, whatever the compute dtype. Under a
    policy that computes in another dtype (fp32), that would score QLoRA in bf16 beside LoRA in
    fp32 on one machine type only; so the repack is turned off unless the policy computes in bf16."""
    if spec["device"] != "cpu" or spec["compute_dtype"] == "bfloat16":
        return model
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
    return model


def nf4_config(spec: dict, **extra):
    """QLoRA's base: NF4 with double quantisation, computing in the policy's compute dtype."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=DTYPES[spec["compute_dtype"]], **extra)


def lora8(spec: dict):
    from transformers import BitsAndBytesConfig

    return _with_adapter(_load(spec, quantization_config=BitsAndBytesConfig(load_in_8bit=True)), spec)


METHODS = {"base": base, "full": full, "lora": lora, "qlora": qlora, "dora": dora, "lora8": lora8}


def build(spec: dict):
    """The model for spec['method'], loaded from spec['model_path'], every tensor on spec['device']."""
    model = METHODS[spec["method"]](spec)
    check_placed(model, spec["device"])
    return model


def check_placed(model, device: str) -> None:
    """Raise RuntimeError naming the first parameter or buffer not on `device` ("cuda" matches
    any GPU index, "cuda:1" only that one; "meta" is the FSDP ranks' structure-only build). A
    tensor left elsewhere (a CPU buffer on a GPU run) fails later and far away: NCCL refuses it
    in DDP's first broadcast, or every forward copies it to the GPU."""
    want = torch.device(device)
    for kind, named in (("parameter", model.named_parameters()), ("buffer", model.named_buffers())):
        for name, tensor in named:
            here = tensor.device
            if here.type != want.type or (want.index is not None and here.index != want.index):
                raise RuntimeError(f"after loading, {kind} {name} is on {here}, not on the run's device {want}")


def make_optimizer(model, spec: dict):
    params = [p for p in model.parameters() if p.requires_grad]
    kwargs = {"lr": spec["lr"], "weight_decay": spec["weight_decay"]}
    if spec["optimizer"] == "adamw_torch":
        return torch.optim.AdamW(params, **kwargs)
    import bitsandbytes as bnb

    cls = {"adamw_8bit": bnb.optim.AdamW8bit, "paged_adamw": bnb.optim.PagedAdamW,
           "paged_adamw_8bit": bnb.optim.PagedAdamW8bit}[spec["optimizer"]]
    return cls(params, **kwargs)


def make_scheduler(optimizer, spec: dict):
    from transformers import get_scheduler

    return get_scheduler(spec["lr_schedule"], optimizer, num_warmup_steps=0, num_training_steps=spec["steps"])
