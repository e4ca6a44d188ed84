"""The benefit: what the trained weights score, measured in the worker's eval phase.

Held-out loss on the fixed held-out examples, the target task's test split and MMLU through
lm-eval, each with per-example figures kept. A model with random weights (a shape model,
bench.models.shape) has nothing to score: `skip_reason` says so, and the record keeps why.
"""

from pathlib import Path

from bench.models.random_weights import is_shape


def skip_reason(spec: dict) -> str | None:
    """Why this run scores nothing, or None when it is scored."""
    if is_shape(spec.get("model")):
        return "random weights (shape model): held-out loss, target task and MMLU measure nothing"
    return None


def evaluate(model, tokenizer, prepared, *, spec: dict, record: dict, run_dir: Path, say=print) -> None:
    """What the method bought, on the trained weights: held-out loss on the fixed held-out examples,
    the target task's test split and MMLU through lm-eval, each with per-example figures kept."""
    from bench.evaluate.heldout import describe, heldout_block, per_example_losses
    from bench.util.progress import Progress

    batch_size = spec["eval_batch_size"] if isinstance(spec["eval_batch_size"], int) else 8
    if prepared.info["heldout_examples"]:
        progress = Progress(what="held-out loss", total=prepared.info["heldout_examples"], unit="examples", say=say)
        losses, tokens, mean = per_example_losses(model, prepared.heldout_batches(batch_size=batch_size),
                                                  device=spec["device"], on_batch=progress.update)
        progress.finish()
        record["heldout"] = heldout_block(losses=losses, tokens=tokens, mean=mean, ids=prepared.heldout_ids)
        say(describe(record["heldout"]))
    if spec["target_task"]:
        from bench.evaluate.targets import make_lm, score_task

        task, name = spec["target_task"], f"{spec['target_task']}_predictions.jsonl"
        block = score_task(lm=make_lm(model=model, tokenizer=tokenizer, batch_size=batch_size, device=spec["device"]),
                           task=task, limit=spec["target_limit"], predictions_path=run_dir / name, say=say)
        record["tasks"][task] = dict(block, role="target", predictions_file=f"runs/{run_dir.name}/{name}")
        say(f"{task}: acc {100 * block['acc']:.1f}% on {block['n']} questions")
    if spec.get("forget_tasks"):
        from bench.evaluate.targets import score_suite

        suite = score_suite(model=model, tokenizer=tokenizer, batch_size=batch_size, device=spec["device"],
                            names=spec["forget_tasks"], limit=spec["forget_limit"], run_dir=run_dir, say=say)
        record["tasks"].update(suite)
        say("forgetting suite: " + ", ".join(f"{t} {100 * b['acc']:.1f}% on {b['n']}" for t, b in suite.items()))
    if spec["mmlu"]:
        from bench.evaluate.mmlu import score

        scored = score(model=model, tokenizer=tokenizer, shots=spec["mmlu_shots"], limit=spec["mmlu_limit"],
                       batch_size=spec["eval_batch_size"], predictions_path=run_dir / "mmlu_predictions.jsonl",
                       tasks=spec["tasks"], device=spec["device"], say=say)
        record["mmlu"] = scored.get("mmlu")
        record["tasks"].update({name: dict(block, role="extra") for name, block in scored.get("tasks", {}).items()})
        if record["mmlu"]:
            record["mmlu"]["predictions_file"] = f"runs/{run_dir.name}/mmlu_predictions.jsonl"
