"""The planner's CPU calibration, measured through the harness itself (no torch here).

    python -m bench.plan.calibration run OUT [--set calibration|out-of-sample]   # measure
    python -m bench.plan.calibration fit OUT/results.jsonl                       # fit and print

`run` launches `run_bench.py run` once per shape in SETS, appending every record to
OUT/results.jsonl: the constants then come from the same worker, loader and allocator as the
runs they predict (the old standalone script loaded models its own way). `fit` reads those
records, refits CPU_ALLOCATOR_FRACTION by least maximum error and prints each run's error.
The records behind the committed constants live in reports/samples/plan-calibration/ and
reports/samples/plan-out-of-sample/ (docs/plan.md, "Calibration").
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# (models, methods, batch, seq, checkpointing). smollm2-135m is the fit set. The out-of-sample
# set uses models the fit never saw: tiny-llama, and `oos-llama`, a randomly initialised Llama
# of another shape (bench.plan.oos_model) built into the cache on first use.
SETS = {
    "calibration": [
        (["smollm2-135m"], ["full", "lora", "qlora", "lora8", "dora"], 4, 128, False),
        (["smollm2-135m"], ["full", "lora", "qlora"], 4, 128, True),
        (["smollm2-135m"], ["full", "lora"], 2, 512, False),
    ],
    "out-of-sample": [
        (["tiny-llama"], ["full", "lora", "qlora"], 4, 128, False),
        (["oos-llama"], ["full", "lora", "qlora", "dora"], 4, 256, False),
        (["oos-llama"], ["full", "lora"], 2, 512, True),
    ],
}
STEPS = 3  # optimizer states exist from step 1; step 2 is the first with every term alive


def commands(out: Path, which: str) -> list:
    """The run_bench.py command lines for one set, in order."""
    cmds = []
    for models, methods, batch, seq, ckpt in SETS[which]:
        models = [str(_model_path(m)) if m == "oos-llama" else m for m in models]
        cmds.append([sys.executable, str(ROOT / "run_bench.py"), "run", "--models", *models,
                     "--methods", *methods, "--batch-size", str(batch), "--seq-len", str(seq),
                     "--grad-checkpointing" if ckpt else "--no-grad-checkpointing",
                     "--dtype", "float32", "--device", "cpu", "--steps", str(STEPS), "--no-eval",
                     "--no-report", "--out", str(out), "--append"])
    return cmds


def _model_path(name: str) -> Path:
    from bench.plan.oos_model import ensure

    return ensure()


def load(path) -> list:
    """Rows for the fit: each ok CPU training record's estimate arguments and measured figures."""
    rows = []
    for line in Path(path).read_text().splitlines():
        rec = json.loads(line)
        cfg = rec.get("config", {})
        if rec.get("status") != "ok" or rec.get("method") == "base" or cfg.get("device") != "cpu":
            continue
        rows.append({
            "model": rec["model"], "model_path": rec["model_path"], "method": rec["method"],
            "kwargs": dict(method=rec["method"], seq_len=cfg["seq_len"], batch_size=cfg["batch_size"],
                           grad_checkpointing=cfg["grad_checkpointing"], optimizer=cfg["optimizer"],
                           precision=cfg.get("precision") or {"float32": "fp32", "bfloat16": "bf16-true"}[cfg["compute_dtype"]],
                           device="cpu", lora_r=cfg["lora_r"], target_modules=cfg["target_modules"],
                           lora_dropout=cfg["lora_dropout"], baseline_bytes=rec["memory"]["baseline_bytes"]),
            "measured_bytes": rec["memory"]["train"]["peak_bytes"],
        })
    return rows


def main(argv) -> int:
    if len(argv) >= 2 and argv[0] == "run":
        which = argv[3] if len(argv) > 3 and argv[2] == "--set" else "calibration"
        for cmd in commands(Path(argv[1]), which):
            print("+", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=False)
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
