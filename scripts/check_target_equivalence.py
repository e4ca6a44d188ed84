"""Check that ftbench's local target task scores a model exactly as lm-eval's built-in task does.

    FTBENCH_CACHE=.cache python scripts/check_target_equivalence.py                  # arc-easy, first 50 test questions
    FTBENCH_CACHE=.cache python scripts/check_target_equivalence.py --source openbookqa --limit 20

Pass (a) scores SmolLM2-135M through `bench.evaluate.targets.score_task` (the generated `ftbench_*` task,
local JSONL). Pass (b) scores the same model through lm-eval's OWN task file (e.g.
lm_eval/tasks/arc/arc_easy.yaml), indexed alone; the hub being unreachable, only its
`datasets.load_dataset("allenai/ai2_arc", "ARC-Easy")` is served from the same local JSONL.
The passes are compared question by question (prompt hash, target, prediction, every choice's
loglikelihood) and in aggregate (acc, acc_norm). Exit 0 if equal.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.data import builtin  # noqa: E402
from bench.evaluate.targets import tasks  # noqa: E402
from bench.util import paths  # noqa: E402

os.environ.setdefault("HF_HOME", str(paths.hf_home()))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def run_pass(*, lm, task, include_path, limit, out):
    from lm_eval.tasks import TaskManager

    from bench.evaluate import predictions
    from bench.evaluate.mmlu import scoring as mmlu_scoring
    from bench.evaluate.targets.scoring import task_block

    mmlu_scoring._prepare_environment(offline=True)
    manager = TaskManager(include_path=str(include_path), include_defaults=False)
    started = time.perf_counter()
    res = mmlu_scoring._evaluate(lm=lm, names=[task], manager=manager, shots=0, limit=limit, quiet=True)
    seconds = time.perf_counter() - started
    block = task_block(res, task=task, limit=limit, shots=0)
    predictions.write_jsonl(out, predictions.prediction_rows(res, {task: None}))
    print(f"[{task}] acc={block['acc']!r} acc_norm={block.get('acc_norm')!r} n={block['n']} "
          f"{seconds:.1f} s = {block['n'] / seconds:.2f} questions/s", flush=True)
    rows = [json.loads(line) for line in open(out)]
    return block, {r["doc_id"]: r for r in rows}


def compare(local, own) -> list:
    (a_block, a_rows), (b_block, b_rows) = local, own
    out = [] if a_rows.keys() == b_rows.keys() else ["different questions"]
    for key in sorted(a_rows.keys() & b_rows.keys()):
        for field in ("prompt_hash", "doc_hash", "target", "pred", "correct", "loglikelihoods"):
            if a_rows[key][field] != b_rows[key][field]:
                out.append(f"doc {key}: {field} differs: {a_rows[key][field]!r} vs {b_rows[key][field]!r}")
    for field in ("acc", "acc_norm", "stderr", "n"):
        if a_block.get(field) != b_block.get(field):
            out.append(f"aggregate {field} differs: {a_block.get(field)!r} vs {b_block.get(field)!r}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default="arc-easy", choices=list(builtin.TASKS))
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bench.evaluate.targets.scoring import make_lm

    model_dir = paths.models_dir() / "smollm2-135m"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    lm = make_lm(model=model, tokenizer=AutoTokenizer.from_pretrained(model_dir), batch_size=args.batch_size)
    datasets.load_dataset = tasks.hub_from_local(datasets.load_dataset)
    own_yaml = tasks.lm_eval_tasks_root() / builtin.TASKS[args.source].lm_eval_yaml
    local_name = tasks.target_task(args.source)
    out = Path(tempfile.mkdtemp(prefix="target-equiv-"))
    local = run_pass(lm=lm, task=local_name, include_path=tasks.ensure_tasks(), limit=args.limit,
                     out=out / "local.jsonl")
    own = run_pass(lm=lm, task=local_name.removeprefix(tasks.PREFIX), include_path=own_yaml.parent,
                   limit=args.limit, out=out / "builtin.jsonl")
    diffs = compare(local, own)
    if diffs:
        print(f"DIFFERENT: {len(diffs)} differences", *diffs[:20], sep="\n")
        return 1
    correct = sum(r["correct"] for r in local[1].values())
    print(f"EQUAL: {len(local[1])} questions, same prompt hash, target, prediction and every loglikelihood; "
          f"{correct} correct; acc {local[0]['acc']!r}, acc_norm {local[0].get('acc_norm')!r} on both")
    return 0


if __name__ == "__main__":
    sys.exit(main())
