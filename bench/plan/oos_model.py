"""`oos-llama`: a randomly initialised Llama of a shape the CPU calibration never saw, for the
planner's out-of-sample check (bench.plan.calibration, set "out-of-sample").

Against smollm2-135m (the fit set: h576, 30 layers, 9 heads / 3 kv, tied, i1536) it is wider,
shallower and untied: h768, 12 layers, 12 heads / 4 kv, i2048, separate lm_head; about 151M
parameters, so RSS figures are of the same order but split differently between weights,
activations and logits. Borrows SmolLM2's tokenizer, as tiny-llama does. Built by a child
process, because the planner never imports torch.
"""

import subprocess
import sys
from pathlib import Path

from bench import paths

CONFIG = dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
              num_key_value_heads=4, max_position_embeddings=2048, tie_word_embeddings=False,
              vocab_size=49152, bos_token_id=1, eos_token_id=2, pad_token_id=2)
SEED = 4321


def ensure() -> Path:
    out = paths.models_dir() / "oos-llama"
    if not (out / "model.safetensors").exists():
        subprocess.run([sys.executable, "-m", "bench.plan.oos_model", str(out)], check=True)
    return out


def build(out: Path) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    model = LlamaForCausalLM(LlamaConfig(**CONFIG)).to(torch.float32)
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp, safe_serialization=True)
    AutoTokenizer.from_pretrained(paths.models_dir() / "smollm2-135m").save_pretrained(tmp)
    tmp.rename(out)


if __name__ == "__main__":
    build(Path(sys.argv[1]))
