"""Shape models: a real architecture at its real size with seeded random weights (`shape:NAME`).

Memory and time do not depend on the weights' values, so a Llama-3.2-1B-shaped model with
random weights costs exactly what the trained checkpoint costs, and needs no hub. `NAME` is a
planner preset (bench/plan/presets, e.g. `llama-3.2-1b`) or a path to a config.json.

Built once per shape into the cache, deterministically: the structure comes from transformers
(the model built on the meta device, so no memory), each tensor is drawn from its own generator
seeded by (seed, tensor name), and written one decoder layer per safetensors shard, so the build
never holds more than one layer. `ftbench_shape.json` beside the weights says how it was built.
Loading (bench.training.methods) reads one tensor at a time with pread, never the whole checkpoint, so a
4-bit or 8-bit base is quantised tensor by tensor and its load peak is the quantised model's.

Token ids come from SmolLM2's tokenizer (vocab 49,152): its ids fit any vocabulary at least as
large, and a smaller one is refused. The parent only resolves and builds through a child process;
it never imports torch.
"""

import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.models.random_weights import SHAPE_PREFIX
from bench.util import paths
from bench.util.errors import BenchError
from bench.util.units import gib

SEED = 1234
TOKENIZER_VOCAB = 49152  # SmolLM2's tokenizer: every id it yields is below this
TOKENS = dict(bos_token_id=1, eos_token_id=2, pad_token_id=2)  # SmolLM2's special ids
BUILDER = 1  # bump when the drawing below changes: a new version builds into a new directory


def shape_config(name: str) -> tuple:
    """(label, config) for `shape:NAME`: the planner preset's or the file's fields, checked."""
    from bench.plan.presets import load

    label, config = load(name.removeprefix(SHAPE_PREFIX))
    if config["vocab_size"] < TOKENIZER_VOCAB:
        raise BenchError(f"model {name!r}: vocab_size {config['vocab_size']:,} is smaller than the tokenizer's "
                         f"{TOKENIZER_VOCAB:,} (shape models borrow SmolLM2's token ids); valid choices: a config "
                         f"with vocab_size >= {TOKENIZER_VOCAB:,}")
    return label, {**config, **TOKENS}


def ensure_shape(name: str) -> Path:
    """models/shape-<label>-<hash>, built on first use under a lock (parallel runs build it once)."""
    label, config = shape_config(name)
    key = hashlib.sha256(json.dumps({"config": config, "seed": SEED, "builder": BUILDER},
                                    sort_keys=True).encode()).hexdigest()[:8]
    out = paths.models_dir() / f"shape-{label}-{key}"
    if (out / "ftbench_shape.json").exists():
        return out
    if not (paths.models_dir() / "smollm2-135m" / "tokenizer.json").exists():
        raise BenchError(f"{name} borrows SmolLM2's tokenizer, which is not set up; run: bash scripts/setup.sh")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / ".shape.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "ftbench_shape.json").exists():
            _check_disk(name, config, out.parent)
            print(f"ftbench: building {name} once into {out} (seeded random weights)", file=sys.stderr, flush=True)
            done = subprocess.run([sys.executable, "-m", "bench.models.shape", str(out), name, json.dumps(config)],
                                  stderr=subprocess.PIPE, text=True)
            if done.returncode != 0:
                shutil.rmtree(_building(out), ignore_errors=True)  # no half-written shape
                last = next((line for line in reversed(done.stderr.splitlines()) if line.strip()), "no output")
                raise BenchError(f"building {name} failed (exit {done.returncode}): {last.strip()[:300]}")
    return out


def _building(out: Path) -> Path:
    """Where a shape is written before it is renamed to `out` (a build seen whole or not at all)."""
    return out.with_name(out.name + ".tmp")


def _check_disk(name: str, config: dict, where: Path) -> None:
    """Refuse before building when the disk cannot hold the bf16 weights (2 bytes a parameter)
    and a tenth more: a full disk used to end the build in a traceback halfway through."""
    from bench.plan.params import counts

    need = int(2 * counts(config)["total"] * 1.1)
    free = shutil.disk_usage(where).free
    if free < need:
        raise BenchError(f"building {name} needs {gib(need):.1f} GiB free in {where}, {gib(free):.1f} GiB is; "
                         f"free some space or point FTBENCH_CACHE at a larger disk")


def shape_info(model_path) -> dict | None:
    """How a shape model was built (its ftbench_shape.json), or None for a checkpoint."""
    path = Path(model_path) / "ftbench_shape.json"
    return json.loads(path.read_text()) if path.is_file() else None


# --- the build, in a child process -------------------------------------------------------------

def _generator(seed: int, name: str):
    import torch

    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def draw(name: str, shape, dtype, *, seed: int, std: float):
    """One tensor, the same whatever order tensors are drawn in: N(0, std) for matrices (the
    model's initializer_range, as transformers initialises), ones for norms, zeros for biases."""
    import torch

    if name.endswith("bias"):
        return torch.zeros(shape, dtype=dtype)
    if len(shape) == 1:
        return torch.ones(shape, dtype=dtype)
    out = torch.empty(shape, dtype=dtype)
    return out.normal_(0.0, std, generator=_generator(seed, name))


def _shard_of(name: str) -> str:
    """One shard per decoder layer; the embedding and the head each in their own."""
    parts = name.split(".")
    if "layers" in parts:
        return f"layer-{int(parts[parts.index('layers') + 1]):03d}"
    return "embed" if "embed" in name else "head"


def build(out: Path, *, name: str, config: dict, seed: int = SEED) -> dict:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    fields = {k: v for k, v in config.items() if k != "model_type"}
    hf_config = AutoConfig.for_model(config["model_type"], **fields)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config, dtype=torch.bfloat16)
    std = getattr(hf_config, "initializer_range", 0.02)
    tensors = model.state_dict()  # on meta: names, shapes and dtypes, no memory; tied weights once
    names = [n for n in tensors if not (hf_config.tie_word_embeddings and n == "lm_head.weight")]
    shards = {}
    for tensor_name in names:
        shards.setdefault(_shard_of(tensor_name), []).append(tensor_name)
    tmp = _building(out)
    tmp.mkdir(parents=True, exist_ok=True)
    weight_map, total = {}, 0
    for index, (shard, members) in enumerate(shards.items()):
        file = f"model-{index + 1:05d}-of-{len(shards):05d}.safetensors"
        drawn = {n: draw(n, tuple(tensors[n].shape), tensors[n].dtype, seed=seed, std=std) for n in members}
        save_file(drawn, str(tmp / file), metadata={"format": "pt"})
        total += sum(t.numel() * t.element_size() for t in drawn.values())
        weight_map.update(dict.fromkeys(members, file))
        del drawn
    (tmp / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1))
    hf_config.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(paths.models_dir() / "smollm2-135m").save_pretrained(tmp)
    info = {"model": name, "weights": "random", "seed": seed, "builder": BUILDER,
            "init": f"per tensor: normal(0, {std}) for matrices, ones for norms, zeros for biases; "
                    f"generator seeded by sha256(seed:name)",
            "dtype": "bfloat16", "params": sum(tensors[n].numel() for n in names), "bytes": total,
            "shards": len(shards), "tokenizer": f"SmolLM2 (vocab {TOKENIZER_VOCAB:,})",
            "torch": torch.__version__, "build_s": round(time.perf_counter() - start, 1)}
    (tmp / "ftbench_shape.json").write_text(json.dumps(info, indent=1))
    tmp.rename(out)
    return info


if __name__ == "__main__":
    build(Path(sys.argv[1]), name=sys.argv[2], config=json.loads(sys.argv[3]))
