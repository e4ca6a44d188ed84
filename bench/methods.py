"""The fine-tuning methods: one registry, one signature.

Each method takes the resolved spec and returns the model ready to train (or, for `base`, to
score): frozen or not, quantised or not, wrapped in a peft adapter or not. Adding a method
is one small function here plus a test.
"""

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _load(spec: dict, **kwargs):
    from transformers import AutoModelForCausalLM

    # disable_mmap: a mapped fp32 checkpoint would stay resident and count against 4-bit models.
    # use_safetensors: never unpickle weights.
    return AutoModelForCausalLM.from_pretrained(
        spec["model_path"], dtype=DTYPES[spec["compute_dtype"]], use_safetensors=True,
        trust_remote_code=spec["trust_remote_code"], disable_mmap=True,
        device_map=spec["device"], **kwargs,
    )


def _lora_config(spec: dict, **extra):
    from peft import LoraConfig

    return LoraConfig(r=spec["lora_r"], lora_alpha=spec["lora_alpha"], lora_dropout=spec["lora_dropout"],
                      target_modules=spec["target_modules"], task_type="CAUSAL_LM", **extra)


def _with_adapter(model, spec: dict, **extra):
    from peft import get_peft_model

    if spec["grad_checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return get_peft_model(model, _lora_config(spec, **extra))


def _kbit(model, spec: dict):
    from peft import prepare_model_for_kbit_training

    # peft turns on gradient checkpointing here by default; pass the spec's choice so the
    # k-bit methods are not silently given a memory saving the others do not get.
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=spec["grad_checkpointing"],
                                           gradient_checkpointing_kwargs={"use_reentrant": False})


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
    from transformers import BitsAndBytesConfig

    # FSDP-QLoRA: FSDP shards floating-point tensors only, so the packed 4-bit weights are stored
    # in the compute dtype (bnb_4bit_quant_storage), as the transformers/peft FSDP-QLoRA recipe does.
    storage = {"bnb_4bit_quant_storage": DTYPES[spec["compute_dtype"]]} if spec.get("strategy") == "fsdp" else {}
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=DTYPES[spec["compute_dtype"]], **storage)
    model = _kbit(_load(spec, quantization_config=quant), spec)
    return _with_adapter(model, dict(spec, grad_checkpointing=False))


def lora8(spec: dict):
    from transformers import BitsAndBytesConfig

    model = _kbit(_load(spec, quantization_config=BitsAndBytesConfig(load_in_8bit=True)), spec)
    return _with_adapter(model, dict(spec, grad_checkpointing=False))


METHODS = {"base": base, "full": full, "lora": lora, "qlora": qlora, "dora": dora, "lora8": lora8}


def build(spec: dict):
    """The model for spec['method'], loaded from spec['model_path']."""
    return METHODS[spec["method"]](spec)


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
