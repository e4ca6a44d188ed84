"""Target tasks: a built-in training task's test split, scored through lm-eval's own task definition.

    target_task("arc-easy")  -> "ftbench_arc_easy" (None for sources without one)
    ensure_tasks()           -> the generated task folder (bench.evaluate.targets.tasks)
    make_lm(...), score_task(lm=, task=, limit=, predictions_path=)
                             (bench.evaluate.targets.scoring; lm-eval, lazily)
    score_suite(model=, tokenizer=, names=, limit=, run_dir=, ...)
                             the forgetting suite (bench.evaluate.targets.suite)

Importing this package imports neither torch nor lm_eval.
"""

from bench.evaluate.targets.tasks import ensure_tasks, target_task

__all__ = ["target_task", "ensure_tasks", "make_lm", "score_task", "score_suite"]


def make_lm(**kwargs):
    """See bench.evaluate.targets.scoring.make_lm (imported on first call: it pulls in lm_eval and torch)."""
    from bench.evaluate.targets.scoring import make_lm as _make_lm

    return _make_lm(**kwargs)


def score_task(**kwargs):
    """See bench.evaluate.targets.scoring.score_task (imported on first call)."""
    from bench.evaluate.targets.scoring import score_task as _score_task

    return _score_task(**kwargs)


def score_suite(**kwargs):
    """See bench.evaluate.targets.scoring.score_suite (imported on first call)."""
    from bench.evaluate.targets.scoring import score_suite as _score_suite

    return _score_suite(**kwargs)
