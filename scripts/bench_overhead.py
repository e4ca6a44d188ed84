#!/usr/bin/env python3
"""Harness overhead: the same training steps through ftbench and through a bare PyTorch loop.

    .venv/bin/python scripts/bench_overhead.py [--model smollm2-135m] [--method lora] [--rounds 3] [--steps 6]

Each round runs, in fresh child processes one after the other, (a) `run_bench.py` for one
(model, method) with scoring off and (b) a bare loop: from_pretrained + peft + AdamW +
forward/backward/step on the same batches, timed with perf_counter and nothing else. Both
count real tokens after the same warm-up steps. Rounds alternate a/b so drift on a shared
machine hits both; the ratio of medians is printed. Target: harness / bare >= 0.95.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BARE = r"""
import json, sys, time, torch, transformers
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
from bench import data   # the same token batches as the harness: identical work
spec = json.loads(sys.argv[1])
transformers.set_seed(spec["seed"])
model = AutoModelForCausalLM.from_pretrained(spec["model_path"], dtype=torch.float32, disable_mmap=True)
if spec["method"] == "lora":
    model = get_peft_model(model, LoraConfig(r=spec["lora_r"], lora_alpha=spec["lora_alpha"],
        lora_dropout=spec["lora_dropout"], target_modules=spec["target_modules"], task_type="CAUSAL_LM"))
tok = AutoTokenizer.from_pretrained(spec["model_path"])
batches = data.prepare(tokenizer=tok, source=spec["data_source"], data_format=spec["data_format"],
                       seq_len=spec["seq_len"], train_on_prompt=spec["train_on_prompt"], packing=spec["packing"],
                       heldout=spec["heldout_examples"], max_unsupervised_pct=spec["max_unsupervised_pct"],
                       ).train_batches(seed=spec["seed"], steps=spec["steps"], grad_accum=1,
                                       batch_size=spec["batch_size"])
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=spec["lr"])
model.train()
times, tokens = [], []
for b in batches:
    t0 = time.perf_counter()
    model(**b).loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    times.append(time.perf_counter() - t0)
    tokens.append(int(b["attention_mask"].sum()))
w = spec["warmup_steps"]
print(json.dumps({"tokens_per_s": sum(tokens[w:]) / sum(times[w:])}))
"""


def harness(args, out: Path) -> tuple:
    cmd = [sys.executable, str(ROOT / "run_bench.py"), "--models", args.model, "--methods", args.method,
           "--steps", str(args.steps), "--precision", "fp32", "--no-eval", "--no-report", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    record = json.loads((out / "results.jsonl").read_text().splitlines()[-1])
    return record["throughput"]["tokens_per_s"], record["config"]


def bare(config: dict) -> float:
    from bench.run.launcher import child_env

    result = subprocess.run([sys.executable, "-c", BARE, json.dumps(config)], check=True, capture_output=True,
                            text=True, cwd=ROOT, env=child_env())
    return json.loads(result.stdout.strip().splitlines()[-1])["tokens_per_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--method", default="lora", choices=["full", "lora"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    through_harness, through_bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(1, args.rounds + 1):
            tps, config = harness(args, Path(tmp) / f"r{round_}")
            through_harness.append(tps)
            through_bare.append(bare(config))
            print(f"round {round_}: harness {through_harness[-1]:.1f} tok/s, bare loop {through_bare[-1]:.1f} tok/s",
                  flush=True)
    ratio = statistics.median(through_harness) / statistics.median(through_bare)
    print(f"{args.model} x {args.method}, {args.steps} steps (warm-up {config['warmup_steps']}), {args.rounds} rounds: "
          f"harness/bare throughput ratio of medians = {ratio:.3f} (target >= 0.95)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
