"""Published MEASURED training-memory figures, each with its exact configuration, and the
planner's prediction of each (docs/plan.md, "Against published measurements").

    python -m bench.plan.published            # the markdown table, then median and max |error|

No constant was set from these rows. Each row names which figure its source measured:
  allocated  torch.cuda.max_memory_allocated / torchtune's "peak memory active"
  reserved   torch.cuda.max_memory_reserved
  device     what nvidia-smi shows for the process (reserved + paged + CUDA context)
`cli(row)` gives the `run_bench.py plan` command line that expresses the row.
"""

import statistics
import sys

from bench.plan import presets
from bench.plan.predict import estimate

GiB = 2**30
TT = ("pytorch/torchtune README.md @ 1814feb17a9038e1a8053ce93111bd26774a8db6, 'Optimization flags' "
      "(Llama 3.2 3B, A100, bf16, batch 2, packed to 4096, 'Peak Memory Active')")
AA = ("AnswerDotAI/fsdp_qlora benchmarks_03_2024.md @ 4cd69234f84de9f4f4933904b8824ab9f2c2a004 "
      "(2x3090, FSDP, train.py defaults @ 049515f81026f5009ac9b0cbaa795a7cc995e4ad)")
PF = ("huggingface/peft docs/source/accelerate/fsdp.md @ 6008f272a, 'Memory usage' "
      "(examples/sft/run_peft_qlora_fsdp.sh without CPU offload)")
MC = ("huggingface/peft method_comparison/MetaMathQA/results/{} @ 5d602fdbff04c33c1c4de55cda9d4ae1d7cb7e40 "
      "(L40S, train_info.accelerator_memory_max)")

# torchtune: compile, chunked CE, packing and checkpointing on; full rows add one flag each.
_TT = dict(model="llama-3.2-3b", seq_len=4096, batch_size=2, precision="bf16-true", packing=True, compile=True,
           loss="chunked", grad_checkpointing=True)
_TT_LORA = dict(_TT, lora_r=64, lora_dropout=0.0, adapter_dtype="bfloat16", optimizer="adamw_torch_fused",
                activation_offload=True,
                target_modules=["q_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
# Answer.AI train.py defaults: r=64 on q,k,v,gate,up,down, dropout 0.1, pure bf16 (adapters too),
# torch AdamW, reentrant checkpointing, dummy data of exactly context_length tokens (no padding);
# transformers 4.38 (March 2024) returned fp32 logits, and train.py holds `output` through backward.
_AA = dict(model="llama-2-7b", gpus=2, loss="fp32-logits", keep_logits=True, precision="bf16-true",
           adapter_dtype="bfloat16", lora_r=64, lora_dropout=0.1,
           target_modules=["q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "down_proj"],
           optimizer="adamw_torch", grad_checkpointing=True, packing=True, seq_len=2048)
# PEFT method comparison: bf16 weights, fp32 adapters, torch AdamW, no checkpointing, batch 4 of
# MetaMathQA padded to the batch's longest, truncated at 768 tokens: priced at 4 x 768 (assumed
# to be the longest batch; see docs/plan.md). run.py holds `outputs` through backward.
_MC = dict(model="llama-3.2-3b", keep_logits=True, seq_len=768, batch_size=4, precision="bf16-true",
           optimizer="adamw_torch", lora_dropout=0.0, grad_checkpointing=False)

ROWS = [
    dict(id="tt-full-ac", method="full", source=TT, figure="allocated", measured=24.9 * GiB, published="24.9 GiB",
         opts=dict(_TT, optimizer="adamw_torch")),
    dict(id="tt-full-oib", method="full", source=TT, figure="allocated", measured=23.1 * GiB, published="23.1 GiB",
         opts=dict(_TT, optimizer="adamw_torch", optimizer_in_backward=True)),
    dict(id="tt-full-offload", method="full", source=TT, figure="allocated", measured=21.8 * GiB,
         published="21.8 GiB",
         opts=dict(_TT, optimizer="adamw_torch", optimizer_in_backward=True, activation_offload=True)),
    dict(id="tt-full-8bit", method="full", source=TT, figure="allocated", measured=17.6 * GiB, published="17.6 GiB",
         opts=dict(_TT, optimizer="adamw_8bit", optimizer_in_backward=True, activation_offload=True)),
    dict(id="tt-lora", method="lora", source=TT, figure="allocated", measured=8.5 * GiB, published="8.5 GiB",
         opts=_TT_LORA),
    dict(id="tt-qlora", method="qlora", source=TT, figure="allocated", measured=4.6 * GiB, published="4.6 GiB",
         opts=_TT_LORA),
    dict(id="aa-lora-b1-512", method="lora", source=AA, figure="allocated", measured=8.28 * GiB,
         published="8.28 GiB", opts=dict(_AA, batch_size=1, seq_len=512)),
    dict(id="aa-lora-b1-2048", method="lora", source=AA, figure="allocated", measured=9.16 * GiB,
         published="9.16 GiB", opts=dict(_AA, batch_size=1)),
    dict(id="aa-lora-b4", method="lora", source=AA, figure="reserved", measured=16.14 * GiB, published="16.14 GiB",
         opts=dict(_AA, batch_size=4)),
    dict(id="aa-lora-b6", method="lora", source=AA, figure="reserved", measured=21.35 * GiB, published="21.35 GiB",
         opts=dict(_AA, batch_size=6)),
    dict(id="aa-qlora-b4", method="qlora", source=AA, figure="reserved", measured=11.22 * GiB,
         published="11.22 GiB", opts=dict(_AA, batch_size=4)),
    dict(id="aa-qlora-b10", method="qlora", source=AA, figure="reserved", measured=20.97 * GiB,
         published="20.97 GiB", opts=dict(_AA, batch_size=10)),
    dict(id="aa-yi34b-qlora-b2", method="qlora", source=AA, figure="reserved", measured=23.05 * GiB,
         published="23.05 GiB", opts=dict(_AA, model="yi-34b", batch_size=2)),
    dict(id="peft-fsdp-qlora-70b", method="qlora", source=PF, figure="device", measured=35.6e9, published="35.6 GB",
         opts=dict(model="llama-2-70b", gpus=2, seq_len=2048, batch_size=2, packing=True, grad_checkpointing=True,
                   precision="bf16-true", adapter_dtype="bfloat16", lora_r=8, lora_dropout=0.1,
                   target_modules="all-linear", optimizer="adamw_torch", loss="fp32-logits")),
    dict(id="mc-lora-r32-qv", method="lora", source=MC.format("lora--llama-3.2-3B-rank32.json"), figure="reserved",
         measured=22_292_725_760, published="22,292,725,760 B",
         opts=dict(_MC, lora_r=32, target_modules=["q_proj", "v_proj"])),
    dict(id="mc-dora-r32-qv", method="dora", source=MC.format("lora--llama-3.2-3B-rank32-dora.json"),
         figure="reserved", measured=24_532_484_096, published="24,532,484,096 B",
         opts=dict(_MC, lora_r=32, target_modules=["q_proj", "v_proj"])),
    dict(id="mc-lora-r10-mlp", method="lora", source=MC.format("lora--llama-3.2-3B-rank10-target-mlp.json"),
         figure="reserved", measured=24_698_159_104, published="24,698,159,104 B",
         opts=dict(_MC, lora_r=10, target_modules=["gate_proj", "up_proj", "down_proj"])),
    dict(id="mc-full", method="full", source=MC.format("full-finetuning--llama-3.2-3B-lr_0.00001.json"),
         figure="reserved", measured=38_868_615_168, published="38,868,615,168 B", opts=_MC),
]
FIGURE_KEY = {"allocated": "allocated_bytes", "reserved": "total_bytes", "device": "device_bytes"}


def predict(row: dict) -> dict:
    """The planner's figure for one row, its error and the estimate behind it."""
    opts = {k: v for k, v in row["opts"].items() if k != "model"}
    est = estimate(config=presets.load(row["opts"]["model"])[1], method=row["method"], device="cuda", **opts)
    predicted = est[FIGURE_KEY[row["figure"]]]
    return {"predicted": predicted, "error_pct": 100.0 * (predicted - row["measured"]) / row["measured"],
            "estimate": est}


FLAGS = {"seq_len": "--seq-len", "batch_size": "--batch-size", "optimizer": "--optimizer",
         "precision": "--precision", "lora_r": "--lora-r", "lora_dropout": "--lora-dropout",
         "adapter_dtype": "--adapter-dtype", "loss": "--loss", "gpus": "--gpus", "offload": "--offload",
         "fsdp_root": "--fsdp-root"}
SWITCHES = {"packing": "--packing", "keep_logits": "--keep-logits", "compile": "--compile",
            "optimizer_in_backward": "--optimizer-in-backward", "activation_offload": "--activation-offload",
            "kbit_upcast": "--kbit-upcast"}


def cli(row: dict) -> list:
    """`run_bench.py plan` arguments that express the row (the test runs them)."""
    o = row["opts"]
    argv = ["plan", "--memory", "1TB", "--models", o["model"], "--methods", row["method"],
            "--grad-checkpointing", "on" if o.get("grad_checkpointing") else "off"]
    for key, flag in FLAGS.items():
        if key in o:
            argv += [flag, str(o[key])]
    for key, flag in SWITCHES.items():
        if o.get(key):
            argv.append(flag)
    if "target_modules" in o:
        targets = o["target_modules"]
        argv += ["--target-modules", *([targets] if isinstance(targets, str) else targets)]
    return argv


def table() -> str:
    """The markdown table, each row's configuration as plan arguments, and median/max |error|."""
    lines = ["| id | model | method | figure | published | measured | predicted | error |",
             "|---|---|---|---|---|---|---|---|"]
    configs, errors = [], []
    for row in ROWS:
        out = predict(row)
        errors.append(abs(out["error_pct"]))
        lines.append(f"| {row['id']} | {row['opts']['model']} | {row['method']} | {row['figure']} "
                     f"| {row['published']} | {row['measured'] / GiB:.2f} GiB | {out['predicted'] / GiB:.2f} GiB "
                     f"| {out['error_pct']:+.1f}% |")
        configs.append(f"- `{row['id']}`: `run_bench.py {' '.join(cli(row))}`; {row['source']}")
    summary = f"{len(ROWS)} rows: median |error| {statistics.median(errors):.1f}%, max {max(errors):.1f}%."
    return "\n".join(lines + ["", summary, "", "Configurations and sources:", ""] + configs)


if __name__ == "__main__":
    print(table())
    sys.exit(0)
