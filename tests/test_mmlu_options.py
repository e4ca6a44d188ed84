"""bench.evaluate.mmlu option validation and data checks: pure, fast, no model."""

import json
import subprocess
import sys

import pytest

from bench.evaluate.mmlu import check_data, validate
from bench.evaluate.mmlu.tasks import builtin_subjects
from bench.util import paths
from bench.util.errors import BenchError


@pytest.mark.parametrize("shots", [0, 1, 5])
def test_valid_shots_pass(shots):
    validate(shots=shots, limit=None, tasks=())


@pytest.mark.parametrize("shots", [-1, 26, 6, "5", 5.0, True, None])
def test_bad_shots_are_refused(shots):
    with pytest.raises(BenchError, match="shots"):
        validate(shots=shots, limit=1, tasks=())


@pytest.mark.parametrize("limit", [0, -3, 1.5, "2", False])
def test_bad_limit_is_refused(limit):
    with pytest.raises(BenchError, match="limit"):
        validate(shots=0, limit=limit, tasks=())


def test_known_tasks_pass():
    validate(shots=0, limit=2, tasks=["ftbench_mmlu_anatomy", "ftbench_mmlu_stem", "hellaswag", "arc_easy"])


def test_unknown_task_is_refused_with_a_suggestion():
    with pytest.raises(BenchError, match=r"unknown task 'hellaswg'.*hellaswag"):
        validate(shots=0, limit=None, tasks=["hellaswg"])


def test_tasks_as_a_string_is_refused():
    with pytest.raises(BenchError, match="list"):
        validate(shots=0, limit=None, tasks="hellaswag")


def test_validate_imports_neither_torch_nor_lm_eval():
    code = ("import sys; from bench.evaluate.mmlu import validate; validate(shots=5, limit=3, tasks=['arc_easy']); "
            "print(sorted(m for m in ('torch', 'lm_eval', 'transformers', 'datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=paths.REPO_ROOT)
    assert out.stdout.strip() == "[]"


def _fake_mmlu(root, subject, lines):
    folder = root / "mmlu" / subject
    folder.mkdir(parents=True)
    (root / "mmlu" / "COMPLETE").write_text("test\n")
    good = json.dumps({"question": "q", "subject": subject, "choices": ["a", "b", "c", "d"], "answer": 1})
    (folder / "dev.jsonl").write_text(good + "\n")
    (folder / "test.jsonl").write_text("".join(line + "\n" for line in lines))


def test_missing_data_names_the_set_up_command(tmp_path, monkeypatch):
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path))
    with pytest.raises(BenchError, match=r"missing.*scripts/setup.sh"):
        check_data(["anatomy"])


@pytest.mark.parametrize("line, why", [
    ("{not json", "not JSON"),
    ('{"question": "q", "choices": ["a", "b", "c"], "answer": 1}', "4 choices"),
    ('{"question": "q", "choices": ["a", "b", "c", "d"], "answer": 4}', "answer 0-3"),
])
def test_corrupt_data_names_the_file_and_line(tmp_path, monkeypatch, line, why):
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path))
    good = json.dumps({"question": "q", "choices": ["a", "b", "c", "d"], "answer": 2})
    _fake_mmlu(tmp_path, "anatomy", [good, line])
    with pytest.raises(BenchError, match=rf"corrupt at .*anatomy/test.jsonl:2.*{why}"):
        check_data(["anatomy"])


def test_real_data_is_complete():
    if not (paths.mmlu_dir() / "COMPLETE").exists():
        pytest.skip(f"no MMLU data in {paths.mmlu_dir()}: run bash scripts/setup.sh")
    counts = check_data(builtin_subjects())
    assert len(counts) == 57 and sum(counts.values()) == 14042
