"""Check that ftbench's local MMLU tasks score a model exactly as lm-eval's built-in `mmlu` does.

    FTBENCH_CACHE=.cache python scripts/check_mmlu_equivalence.py            # 0-shot, first 2 per subject
    FTBENCH_CACHE=.cache python scripts/check_mmlu_equivalence.py --shots 5 --limit 1 --only local  # speed only

Pass (a) scores SmolLM2-135M through `bench.evaluate.mmlu.score` (ftbench's generated tasks, local JSONL).
Pass (b) scores the same model through lm-eval's OWN `mmlu` task definitions, loaded by the
default TaskManager; the hub being unreachable, only `datasets.load_dataset("cais/mmlu", subject)`
is redirected to the same local JSONL. The two runs are compared question by question (prompt
hash, target, predicted choice, every choice's loglikelihood) and in aggregate. Exit 0 if equal.
Costs CPU: about 114 questions x 2 passes.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.evaluate.mmlu import data  # noqa: E402
from bench.util import paths  # noqa: E402

os.environ.setdefault("HF_HOME", str(paths.hf_home()))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def redirect_cais_mmlu() -> None:
    """Serve `cais/mmlu` from the local JSONL; every other dataset loads as usual."""
    import datasets

    datasets.load_dataset = data.cais_mmlu_from_local(datasets.load_dataset)


def load_model():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = paths.models_dir() / "smollm2-135m"
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), AutoTokenizer.from_pretrained(path)


def run_pass(*, source, model, tokenizer, args, out_dir):
    from bench.evaluate import mmlu

    started = time.perf_counter()
    result = mmlu.score(model=model, tokenizer=tokenizer, shots=args.shots, limit=args.limit,
                        batch_size=args.batch_size, predictions_path=out_dir / f"{source}.jsonl", source=source)
    block = result["mmlu"]
    print(f"[{source}] acc={block['acc']!r} n={block['n']} eval_s={block['eval_s']:.1f} "
          f"questions_per_s={block['questions_per_s']:.3f} (pass wall {time.perf_counter() - started:.1f} s, "
          f"task_version {block['task_version']!r})", flush=True)
    rows = [json.loads(line) for line in open(out_dir / f"{source}.jsonl")]
    return block, {(r["subject"], r["doc_id"]): r for r in rows}


def compare(local, builtin) -> list:
    """Every difference between the two passes, as readable strings."""
    (a_block, a_rows), (b_block, b_rows) = local, builtin
    out = []
    if a_rows.keys() != b_rows.keys():
        out.append(f"different questions: {len(a_rows.keys() ^ b_rows.keys())} not in both")
    for key in sorted(a_rows.keys() & b_rows.keys()):
        a, b = a_rows[key], b_rows[key]
        for field in ("prompt_hash", "doc_hash", "target", "pred", "correct", "loglikelihoods"):
            if a[field] != b[field]:
                out.append(f"{key}: {field} differs: {a[field]!r} vs {b[field]!r}")
    for field in ("acc", "stderr", "n", "categories", "subjects"):
        if a_block[field] != b_block[field]:
            out.append(f"aggregate {field} differs: {a_block[field]!r} vs {b_block[field]!r}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shots", type=int, default=0)
    parser.add_argument("--limit", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--only", choices=("local", "builtin"), help="run one pass (speed measurement)")
    parser.add_argument("--keep", type=Path, help="folder to keep the predictions files in")
    args = parser.parse_args()
    model, tokenizer = load_model()
    redirect_cais_mmlu()
    out_dir = args.keep or Path(tempfile.mkdtemp(prefix="mmlu-equiv-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = [args.only] if args.only else ["local", "builtin"]
    passes = {s: run_pass(source=s, model=model, tokenizer=tokenizer, args=args, out_dir=out_dir) for s in sources}
    if len(passes) < 2:
        return 0
    diffs = compare(passes["local"], passes["builtin"])
    n = len(passes["local"][1])
    correct = sum(r["correct"] for r in passes["local"][1].values())
    if diffs:
        print(f"DIFFERENT: {len(diffs)} differences over {n} questions", *diffs[:20], sep="\n")
        return 1
    print(f"EQUAL: {n} questions, same prompt hash, target, prediction and all 4 loglikelihoods for every one; "
          f"{correct} correct; acc {passes['local'][0]['acc']!r} = {passes['builtin'][0]['acc']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
