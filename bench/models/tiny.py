"""Randomly initialised Llamas built from a config: `tiny-llama` for smoke tests, and any other
shape a caller names (the planner's out-of-sample `oos-llama`).

They borrow SmolLM2's tokenizer (vocab 49,152), so data and scoring run exactly as for the real
model. Built once into the cache by a child process, because the parent never imports torch.
"""

import fcntl
import json
import subprocess
import sys
from pathlib import Path

from bench.util import paths
from bench.util.errors import BenchError

CONFIG = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=4, max_position_embeddings=2048, tie_word_embeddings=True,
              vocab_size=49152, bos_token_id=1, eos_token_id=2, pad_token_id=2)
SEED = 1234


def tiny_dir() -> Path:
    return paths.models_dir() / "tiny-llama"


def ensure_tiny_llama() -> Path:
    return ensure_random("tiny-llama", config=CONFIG, seed=SEED)


def ensure_random(name: str, *, config: dict, seed: int) -> Path:
    """models/<name>, a random Llama of `config`, built on first use (under a lock: safe with parallel runs)."""
    out = paths.models_dir() / name
    if (out / "model.safetensors").exists():
        return out
    source = paths.models_dir() / "smollm2-135m"
    if not (source / "tokenizer.json").exists():
        raise BenchError(f"{name} borrows SmolLM2's tokenizer, which is not set up; run: bash scripts/setup.sh")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / ".tiny.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "model.safetensors").exists():
            subprocess.run([sys.executable, "-m", "bench.models.tiny", str(out), str(seed), json.dumps(config)],
                           check=True)
    return out


def build(out: Path, *, seed: int, config: dict) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**config)).to(torch.float32)
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp, safe_serialization=True)
    AutoTokenizer.from_pretrained(paths.models_dir() / "smollm2-135m").save_pretrained(tmp)
    tmp.rename(out)


if __name__ == "__main__":
    build(Path(sys.argv[1]), seed=int(sys.argv[2]), config=json.loads(sys.argv[3]))
