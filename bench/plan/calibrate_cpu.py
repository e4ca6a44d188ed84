"""Standalone CPU calibration run for the planner (imports torch; the planner itself never does).

    FTBENCH_CACHE=/work/main/.cache python -m bench.plan.calibrate_cpu METHOD CKPT BATCH SEQ [MODEL]
    e.g. python -m bench.plan.calibrate_cpu lora off 4 128

Loads the cached model in fp32 with mmap disabled (FACTS.md), resets the kernel's RSS
high-water mark after load (gc + malloc_trim first), trains STEPS (default 2) AdamW steps on
random tokens with r=8 all-linear adapters, and prints one JSON line: import RSS, RSS after
load, train-phase peak RSS. Two steps are the minimum: optimizer states exist only from the
first step on. The harness's worker records are the real calibration; this is a sanity check.
"""

import ctypes
import gc
import json
import os
import resource
import sys
import time


def rss() -> int:
    """Current resident set size in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def load(path, method, ckpt):
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    kw = dict(dtype=torch.float32, disable_mmap=True, device_map="cpu")
    if method == "qlora":
        kw["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.float32)
    elif method == "lora8":
        kw["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
    model = AutoModelForCausalLM.from_pretrained(path, **kw)
    if method in ("qlora", "lora8"):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=ckpt)
    elif ckpt:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    if method in ("lora", "qlora", "lora8", "dora"):
        config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", lora_dropout=0.0,
                            use_dora=method == "dora", task_type="CAUSAL_LM")
        model = get_peft_model(model, config)
    model.config.use_cache = False
    return model.train()


def main(argv) -> dict:
    import torch

    method, ckpt, batch, seq = argv[0], argv[1] == "on", int(argv[2]), int(argv[3])
    name = argv[4] if len(argv) > 4 else "smollm2-135m"
    from bench.paths import models_dir

    torch.manual_seed(0)
    import_rss = rss()
    model = load(str(models_dir() / name), method, ckpt)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq))
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    after_load = rss()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM (and ru_maxrss) to the current RSS
    start = time.time()
    for _ in range(int(os.environ.get("STEPS", 2))):
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return dict(method=method, ckpt=ckpt, batch=batch, seq=seq, model=name, import_rss=import_rss,
                after_load_rss=after_load, train_peak_bytes=peak, wall_s=round(time.time() - start, 1))


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
