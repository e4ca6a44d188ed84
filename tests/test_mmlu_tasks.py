"""The generated local MMLU task folder: lm-eval's built-in definitions, local data, kept current."""

import json

import pytest
import yaml

from bench.evaluate.mmlu import tasks


@pytest.fixture
def fake_cache(tmp_path, monkeypatch):
    row = json.dumps({"question": "q", "subject": "s", "choices": ["a", "b", "c", "d"], "answer": 0}) + "\n"
    for subject in tasks.builtin_subjects():
        folder = tmp_path / "mmlu" / subject
        folder.mkdir(parents=True)
        (folder / "dev.jsonl").write_text(row)
        (folder / "test.jsonl").write_text(row)
    (tmp_path / "mmlu" / "COMPLETE").write_text("fake\n")
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path))
    return tmp_path


def test_subject_task_keeps_builtin_description_and_reads_local_data(fake_cache):
    folder = tasks.ensure_tasks()
    local = yaml.safe_load((folder / "ftbench_mmlu_virology.yaml").read_text())
    builtin = yaml.safe_load((tasks.builtin_dir() / "mmlu_virology.yaml").read_text())
    assert local["description"] == builtin["description"]
    assert local["task"] == "ftbench_mmlu_virology" and local["tag"] == "ftbench_mmlu_other_tasks"
    assert local["dataset_kwargs"]["data_files"]["test"] == str(fake_cache / "mmlu" / "virology" / "test.jsonl")
    template = yaml.safe_load((folder / tasks.TEMPLATE).read_text())
    assert template["dataset_path"] == "json" and template["fewshot_config"] == {"sampler": "first_n"}
    group = yaml.safe_load((folder / "_ftbench_mmlu.yaml").read_text())
    assert group["aggregate_metric_list"] == [{"metric": "acc", "weight_by_size": True}]
    assert sorted(group["task"]) == sorted(f"ftbench_mmlu_{c}" for c in tasks.CATEGORIES)


def test_categories_match_lm_eval(fake_cache):
    counts = {}
    for category in tasks.builtin_subjects().values():
        counts[category] = counts.get(category, 0) + 1
    assert counts == {"stem": 19, "humanities": 13, "social_sciences": 12, "other": 13}


def test_stale_folder_is_regenerated(fake_cache):
    folder = tasks.ensure_tasks()
    (folder / "STAMP.json").write_text(json.dumps({"lm_eval": "0.0.1"}))
    (folder / "ftbench_mmlu_virology.yaml").unlink()
    assert not tasks.is_current(folder)
    assert tasks.ensure_tasks() == folder
    assert tasks.is_current(folder) and (folder / "ftbench_mmlu_virology.yaml").exists()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".mmlu_tasks")]
