"""MMLU scoring through lm-eval, on local data, comparable with lm-eval's built-in `mmlu`.

    validate(shots=, limit=, tasks=)      # pure: no torch, no lm_eval; call when parsing a profile
    check_data(subjects)                  # local JSONL present and well-formed (BenchError if not)
    score(model=, tokenizer=, shots=, limit=, batch_size=, predictions_path=, tasks=())

`score` is imported lazily so that importing this package stays light.
"""

from bench.evaluate.mmlu.data import check_data
from bench.evaluate.mmlu.options import validate

__all__ = ["validate", "check_data", "score"]


def score(**kwargs):
    """See bench.evaluate.mmlu.scoring.score (imported on first call: it pulls in lm_eval and torch)."""
    from bench.evaluate.mmlu.scoring import score as _score

    return _score(**kwargs)
