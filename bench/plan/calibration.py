"""The planner's CPU calibration, measured through the harness itself (no torch here).

    python -m bench.plan.calibration run OUT [--set calibration|out-of-sample]   # measure
    python -m bench.plan.calibration fit OUT/results.jsonl                       # fit and print
    python -m bench.plan.calibration check OUT/results.jsonl   # errors with the committed constants

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

from bench.util.units import mib

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
        (["oos-llama"], ["full", "lora", "qlora"], 4, 256, False),
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
                     "--precision", "fp32", "--device", "cpu", "--steps", str(STEPS), "--no-eval",
                     "--no-report", "--out", str(out), "--append"])
    return cmds


def _model_path(name: str) -> Path:
    from bench.plan.oos_model import ensure

    return ensure()


def load(path) -> list:
    """Rows for the fit: each ok CPU training record's estimate arguments and measured figures."""
    from bench.plan.options import from_run

    rows = []
    for line in Path(path).read_text().splitlines():
        rec = json.loads(line)
        cfg = rec.get("config", {})
        if rec.get("status") != "ok" or rec.get("method") == "base" or cfg.get("device") != "cpu":
            continue
        policy = rec.get("precision") if isinstance(rec.get("precision"), dict) else {}  # schema v2
        rows.append({
            "model": Path(rec["model"]).name, "method": rec["method"],
            "kwargs": dict(method=rec["method"],
                           **from_run(rec, device="cpu", kbit_upcast=bool(policy.get("kbit_upcast")))),
            "measured_bytes": rec["memory"]["train"]["peak_bytes"],
        })
    return rows


def predict(row: dict, *, fraction: float = None) -> dict:
    """The planner's figure for one calibration row, with the allocator fraction overridden
    (the fit) or the committed one."""
    from bench.plan import estimate, predict as P

    est = estimate(config=_config(row["model"]), **row["kwargs"])
    without = est["total_bytes"] - est["terms"]["allocator"]
    f = P.CPU_ALLOCATOR_FRACTION if fraction is None else fraction
    predicted = without + int(f * est["forward_volume_bytes"])
    return {"predicted": predicted, "error_pct": 100.0 * (predicted - row["measured_bytes"]) / row["measured_bytes"],
            "without": without, "volume": est["forward_volume_bytes"]}


def _config(model: str) -> dict:
    """A calibration model's config, from the planner's own presets (no model files needed)."""
    from bench.plan import oos_model, presets

    if model == "oos-llama":
        return dict(oos_model.CONFIG)
    return presets.load(model)[1]


def fit(rows) -> float:
    """The allocator fraction with the least maximum |error| over `rows` (a 1-D grid, 0.005 steps)."""
    parts = [predict(r, fraction=0.0) for r in rows]

    def worst(f):
        return max(abs(p["without"] + f * p["volume"] - r["measured_bytes"]) / r["measured_bytes"]
                   for p, r in zip(parts, rows))

    return min((i / 200 for i in range(0, 301)), key=worst)


def table(rows, *, fraction: float = None) -> str:
    """Markdown rows: run, measured train peak, predicted, error."""
    lines = ["| model | method | batch x seq | ckpt | dropout | measured | predicted | error |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        k, out = r["kwargs"], predict(r, fraction=fraction)
        lines.append(f"| {r['model']} | {r['method']} | {k['batch_size']} x {k['seq_len']} "
                     f"| {'on' if k['grad_checkpointing'] else 'off'} | {k['lora_dropout']} "
                     f"| {mib(r['measured_bytes']):,.0f} MiB | {mib(out['predicted']):,.0f} MiB "
                     f"| {out['error_pct']:+.1f}% |")
    return "\n".join(lines)


def main(argv) -> int:
    if len(argv) >= 2 and argv[0] == "run":
        which = argv[3] if len(argv) > 3 and argv[2] == "--set" else "calibration"
        for cmd in commands(Path(argv[1]), which):
            print("+", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=False)
        return 0
    if len(argv) >= 2 and argv[0] == "fit":
        rows = load(argv[1])
        best = fit(rows)
        print(f"least-max-error allocator fraction over {len(rows)} runs: {best:.3f}")
        print(table(rows, fraction=best))
        return 0
    if len(argv) >= 2 and argv[0] == "check":
        print(table(load(argv[1])))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
