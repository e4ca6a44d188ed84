"""The prompts ftbench's local tasks build equal those of lm-eval's built-in `mmlu`, 0- and 5-shot.

Both sides run through lm-eval's evaluator with a stub LM that records every request. The
built-in side is lm-eval's own `mmlu/default` YAMLs, indexed alone (not the 24 s full index),
with `cais/mmlu` served from the local JSONL because the hub is unreachable.
"""

import datasets
import pytest

from bench.evaluate.mmlu import data, tasks
from bench.evaluate.mmlu.scoring import _prepare_environment
from bench.util import paths

pytestmark = pytest.mark.skipif(not (paths.mmlu_dir() / "COMPLETE").exists(),
                                reason="no local MMLU data: run bash scripts/setup.sh")

SUBJECT = "high_school_physics"


class RecordingLM:
    """Built lazily so importing this file does not import lm_eval."""

    @staticmethod
    def make():
        from lm_eval.api.model import LM

        class _Recorder(LM):
            def __init__(self):
                super().__init__()
                self.requests = []

            def loglikelihood(self, requests, disable_tqdm=False):
                self.requests += [tuple(r.args) for r in requests]
                return [(0.0 if r.args[1] == " A" else -1.0, False) for r in requests]

            def loglikelihood_rolling(self, requests, disable_tqdm=False):
                raise NotImplementedError

            def generate_until(self, requests, disable_tqdm=False):
                raise NotImplementedError

        return _Recorder()


@pytest.fixture
def local_cais_mmlu(monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", data.cais_mmlu_from_local(datasets.load_dataset))


def _requests(task, include_path, shots):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    _prepare_environment(offline=True)
    lm = RecordingLM.make()
    manager = TaskManager(include_path=str(include_path), include_defaults=False)
    simple_evaluate(model=lm, tasks=[task], num_fewshot=shots, limit=2, task_manager=manager,
                    log_samples=False, verbosity="ERROR")
    return sorted(lm.requests)


@pytest.mark.parametrize("shots", [0, 5])
def test_local_prompt_equals_builtin_prompt(shots, local_cais_mmlu):
    local = _requests(f"ftbench_mmlu_{SUBJECT}", tasks.ensure_tasks(), shots)
    builtin = _requests(f"mmlu_{SUBJECT}", tasks.builtin_dir(), shots)
    assert len(local) == 2 * 4  # 2 questions x 4 choices
    assert local == builtin
    context, continuation = local[0]
    assert context.startswith("The following are multiple choice questions (with answers) "
                              "about high school physics.\n\n")
    assert context.endswith("\nAnswer:") and continuation in (" A", " B", " C", " D")
    # each few-shot example ends in "Answer: <letter>\n\n"; the question asked ends in "Answer:"
    assert context.count("\nAnswer:") == shots + 1
