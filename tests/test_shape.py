"""Shape models (bench.models.shape): real architectures with seeded random weights, on tiny
shapes so each test takes seconds. The parameter count is checked against the planner's own
arithmetic (bench.plan.params), an independent computation; the load peak in a fresh process."""

import hashlib
import json
import subprocess
import sys
import textwrap

import pytest

from bench.models import resolve
from bench.models.shape import build, shape_config
from bench.plan.params import counts
from bench.util.errors import BenchError
from tests.conftest import ROOT, one_clean_error_line, run_cli

LLAMA = dict(model_type="llama", hidden_size=64, intermediate_size=160, num_hidden_layers=3, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=49152, tie_word_embeddings=False)
QWEN = dict(LLAMA, model_type="qwen2", tie_word_embeddings=True)
# its decoder linears (24 x 1.05M) outweigh the rest, yet quantise in seconds
WIDE = dict(model_type="llama", hidden_size=256, intermediate_size=1024, num_hidden_layers=24, num_attention_heads=8,
            num_key_value_heads=8, vocab_size=49152, tie_word_embeddings=True)


def _config_file(tmp_path, config, name="shape.json"):
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("config", [LLAMA, QWEN], ids=["llama-gqa-untied", "qwen2-bias-tied"])
def test_architecture_and_parameter_count_equal_the_config(tmp_path, config):
    import torch

    from bench.models.shape_load import load_shape

    path = resolve(f"shape:{_config_file(tmp_path, config)}")
    model = load_shape(path, dtype=torch.bfloat16)
    expected = counts(dict(config, head_dim=config["hidden_size"] // config["num_attention_heads"]))["total"]
    assert sum(p.numel() for p in model.parameters()) == expected
    assert json.loads((path / "ftbench_shape.json").read_text())["params"] == expected
    assert model.config.model_type == config["model_type"]
    assert len(model.model.layers) == config["num_hidden_layers"]
    attention = model.model.layers[0].self_attn
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    assert attention.k_proj.out_features == config["num_key_value_heads"] * head_dim
    assert (attention.q_proj.bias is not None) == (config["model_type"] == "qwen2")
    assert (model.lm_head.weight is model.model.embed_tokens.weight) == config["tie_word_embeddings"]
    assert all(p.dtype == torch.bfloat16 and p.device.type == "cpu" for p in model.parameters())
    assert torch.isfinite(model(torch.tensor([[1, 2, 49151]])).logits).all()  # the tokenizer's largest id fits


def test_the_build_is_deterministic_and_says_how_it_was_made(tmp_path):
    label, config = shape_config(f"shape:{_config_file(tmp_path, LLAMA)}")
    digests = []
    for name in ("a", "b"):
        info = build(tmp_path / name, name=f"shape:{label}", config=config, seed=7)
        digests.append({f.name: hashlib.sha256(f.read_bytes()).hexdigest()
                        for f in (tmp_path / name).glob("*.safetensors")})
    # a shard per layer, embed, head
    assert digests[0] == digests[1] and len(digests[0]) == LLAMA["num_hidden_layers"] + 2
    assert info["weights"] == "random" and info["seed"] == 7 and "normal(0, 0.02)" in info["init"]
    other = build(tmp_path / "c", name="x", config=config, seed=8)
    assert other["params"] == info["params"]
    changed = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in (tmp_path / "c").glob("*.safetensors")}
    assert changed != digests[0]  # the seed is used


_PEAK = textwrap.dedent("""
    import json, sys, torch
    import transformers, peft, bitsandbytes
    from bench.measure.memory import peak_rss_bytes, release_memory, reset_peak_rss, rss_bytes
    from bench.training.methods import nf4_config
    from bench.models.shape_load import load_shape
    spec = {"compute_dtype": "bfloat16"}
    # bitsandbytes' first quantisation sets up its ops (tens of MiB, whatever the model): not the model's cost
    bitsandbytes.functional.quantize_4bit(torch.ones(64, 64, dtype=torch.bfloat16), quant_type="nf4")
    release_memory(); reset_peak_rss(); before = rss_bytes()
    if sys.argv[2] == "from_pretrained":  # what transformers alone does: the bf16 checkpoint read first
        model = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.bfloat16,
            disable_mmap=True, quantization_config=nf4_config(spec))
    else:
        model = load_shape(sys.argv[1], dtype=torch.bfloat16, quantization_config=nf4_config(spec))
    peak = peak_rss_bytes() - before
    sd = {k: v.float().sum().item() for k, v in model.state_dict().items() if v.is_floating_point()}
    print(json.dumps({"peak": peak, "sums": sd}))
""")


def _load_peak(path, how="shape"):
    done = subprocess.run([sys.executable, "-c", _PEAK, str(path), how], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_layer_by_layer_quantisation_keeps_the_load_peak_below_the_bf16_model(tmp_path):
    import shutil

    path = resolve(f"shape:{_config_file(tmp_path, WIDE)}")
    for cached in path.glob("nf4-*"):
        shutil.rmtree(cached)  # quantise now, as a first load does
    bf16_bytes = json.loads((path / "ftbench_shape.json").read_text())["bytes"]
    first = _load_peak(path)
    # measured here: 119 MiB against 144 MiB at 512 wide, 12 layers
    assert first["peak"] < bf16_bytes, (first["peak"], bf16_bytes)
    again = _load_peak(path)  # the NF4 weights now come from the cache: the same model
    assert again["sums"] == first["sums"]
    assert again["peak"] < first["peak"]  # nothing quantised: no quantisation temporaries


def test_a_vocabulary_smaller_than_the_tokenizers_is_refused(tmp_path):
    with pytest.raises(BenchError, match="vocab_size 1,000 is smaller than the tokenizer's 49,152"):
        resolve(f"shape:{_config_file(tmp_path, dict(LLAMA, vocab_size=1000))}")


def test_an_unknown_shape_is_one_clean_line(tmp_path):
    line = one_clean_error_line(run_cli("--models", "shape:no-such-model", "--methods", "lora",
                                        "--out", tmp_path / "out"))
    assert "no-such-model" in line and "llama-3.2-1b" in line  # the presets are the valid choices


def test_a_shape_run_measures_cost_and_scores_nothing(tmp_path):
    """End to end: the record says weights random, skips the benefit with its reason, and keeps
    every cost figure and the planner's estimate."""
    config = _config_file(tmp_path, QWEN)
    done = run_cli("--profile", "smoke", "--models", f"shape:{config}", "--methods", "qlora", "--steps", "3",
                   "--max-memory", "3GiB", "--out", tmp_path / "out", "--no-report")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (record,) = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert record["status"] == "ok" and record["weights"] == "random"
    assert record["eval_skipped"].startswith("random weights")
    assert record["mmlu"] is None and record["heldout"] is None and record["tasks"] == {}
    assert record["shape"]["seed"] and "NF4" in record["shape"]["load"]
    assert record["memory"]["train"]["peak_bytes"] > 0 and record["throughput"]["tokens_per_s"] > 0
    assert record["estimate"]["total_bytes"] > 0 and "breakdown" in record["memory"]


def test_skip_leaves_model_method_pairs_out_of_the_matrix(tmp_path):
    from bench.run.matrix import build_matrix
    from bench.run.profile import load_profile

    shape = f"shape:{_config_file(tmp_path, LLAMA)}"
    settings = load_profile("smoke", overrides={"run": {"models": ["tiny-llama", shape], "skip": [f"{shape}:full"]}})
    pairs = {(spec["model"], spec["method"]) for spec in build_matrix(settings)}
    assert (shape, "full") not in pairs and (shape, "lora") in pairs and ("tiny-llama", "full") in pairs
    with pytest.raises(BenchError, match="run.skip entry 'tiny-llama:nothing'"):
        load_profile("smoke", overrides={"run": {"skip": ["tiny-llama:nothing"]}})


def test_fit_measures_a_shape_model(tmp_path):
    """`fit` probes a shape model as it probes a checkpoint (run at 3B in the README)."""
    out = tmp_path / "out"
    done = run_cli("fit", "--models", f"shape:{_config_file(tmp_path, LLAMA)}", "--methods", "lora", "--memory", "1GiB",
                   "--seq-len", "64", "--steps", "1", "--profile", "smoke", "--out", out)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    (row,) = json.loads((out / "fit.json").read_text())
    assert records and all(r["weights"] == "random" for r in records)
    assert row["measured_largest"] == max(r["config"]["batch_size"] for r in records if r["status"] == "ok")


def _cache_with_tokenizer(tmp_path, monkeypatch):
    """An empty cache that has SmolLM2's tokenizer (what a shape build borrows)."""
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "models" / "smollm2-135m").mkdir(parents=True)
    (tmp_path / "cache" / "models" / "smollm2-135m" / "tokenizer.json").write_text("{}")


def test_a_disk_too_small_for_the_shape_is_refused_before_building(tmp_path, monkeypatch):
    from bench.models import shape

    _cache_with_tokenizer(tmp_path, monkeypatch)
    monkeypatch.setattr(shape.shutil, "disk_usage", lambda path: type("U", (), {"free": 10**9})())
    with pytest.raises(BenchError, match=r"building shape:llama-3.1-8b needs 16\.5 GiB free in .*, 0\.9 GiB is"):
        shape.ensure_shape("shape:llama-3.1-8b")  # 2 B x 8.03B params x 1.1
    assert not list((tmp_path / "cache" / "models").glob("shape-*"))


def test_a_failed_build_is_one_line_and_leaves_no_half_written_shape(tmp_path, monkeypatch):
    from bench.models import shape

    _cache_with_tokenizer(tmp_path, monkeypatch)

    def fails(cmd, **kwargs):  # the child got as far as writing some shards, then the disk filled
        (shape.Path(cmd[3]).with_name(shape.Path(cmd[3]).name + ".tmp")).mkdir(parents=True)
        return subprocess.CompletedProcess(cmd, 1, stderr="Traceback ...\nsafetensors_rust.SafetensorError: Error "
                                                          "while serializing: No space left on device (os error 28)\n")

    monkeypatch.setattr(shape.subprocess, "run", fails)
    path = _config_file(tmp_path, LLAMA)
    with pytest.raises(BenchError, match=r"building shape:.* failed \(exit 1\): .*No space left on device"):
        shape.ensure_shape(f"shape:{path}")
    assert not list((tmp_path / "cache" / "models").glob("shape-*"))  # neither the shape nor its .tmp
