"""Generate ftbench's local MMLU tasks from lm-eval's own built-in `mmlu` task files.

    python -m bench.evaluate.mmlu.tasks     # (re)generate <cache>/mmlu_tasks/ if stale

The built-in YAMLs (lm_eval/tasks/mmlu/default/) are read and copied with two changes only:
names gain an `ftbench_` prefix (so they never collide with the built-ins) and the dataset is
the local JSONL instead of the hub's `cais/mmlu`. Prompt template, per-subject description,
few-shot sampler, metric, category groups and the weighted group average are lm-eval's own,
so scores are comparable with lm-eval's `mmlu`. The folder is regenerated when lm-eval's
version, the data location or this generator changes.
"""

import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path

from bench.evaluate.mmlu import data
from bench.util import paths
from bench.util.atomic import replacing_dir

GENERATOR_VERSION = 1
PREFIX = "ftbench_"
GROUP = "ftbench_mmlu"
CATEGORIES = ("stem", "humanities", "social_sciences", "other")
TEMPLATE = "_ftbench_template_yaml"


def lm_eval_version() -> str:
    return importlib.metadata.version("lm_eval")


def builtin_dir() -> Path:
    """lm-eval's installed `mmlu/default` folder, found without importing lm_eval."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("lm_eval is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "tasks" / "mmlu" / "default"


def tasks_dir() -> Path:
    return paths.cache_dir() / "mmlu_tasks"


def _load_yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def builtin_subjects() -> dict:
    """subject -> category, read from the built-in subject files (their `tag`)."""
    out = {}
    for path in sorted(builtin_dir().glob("mmlu_*.yaml")):
        config = _load_yaml(path)
        out[config["dataset_name"]] = config["tag"].removeprefix("mmlu_").removesuffix("_tasks")
    return out


def _rename(name: str) -> str:
    return PREFIX + name


def _subject_config(config: dict, subject: str) -> dict:
    out = dict(config, task=_rename(config["task"]), tag=_rename(config["tag"]), include=TEMPLATE)
    out.pop("dataset_name")
    out["dataset_kwargs"] = {
        "data_files": {split: str(data.split_file(subject, split)) for split in data.SPLITS},
        "cache_dir": str(paths.hf_home() / "datasets"),
    }
    return out


def _group_config(config: dict) -> dict:
    return dict(config, group=_rename(config["group"]), task=[_rename(t) for t in config["task"]])


def stamp() -> dict:
    return {"generator": GENERATOR_VERSION, "lm_eval": lm_eval_version(), "mmlu_dir": str(paths.mmlu_dir())}


def is_current(folder: Path) -> bool:
    try:
        return json.loads((folder / "STAMP.json").read_text()) == stamp()
    except (OSError, ValueError):
        return False


def _write(folder: Path) -> None:
    import yaml

    source = builtin_dir()
    template = _load_yaml(source / "_default_template_yaml")
    template["dataset_path"] = "json"
    files = {TEMPLATE: template}
    for path in sorted(source.glob("mmlu_*.yaml")):
        config = _load_yaml(path)
        files[_rename(path.name)] = _subject_config(config, config["dataset_name"])
    for path in sorted(source.glob("_mmlu*.yaml")):
        files["_" + _rename(path.name[1:])] = _group_config(_load_yaml(path))
    for name, config in files.items():
        (folder / name).write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    (folder / "STAMP.json").write_text(json.dumps(stamp(), indent=1))


def ensure_tasks() -> Path:
    """The generated task folder, (re)built atomically if missing or stale; checks the data first."""
    target = tasks_dir()
    data.check_data(builtin_subjects())
    if is_current(target):
        return target
    with replacing_dir(target) as staging:
        _write(staging)
    return target


def main() -> int:
    print(f"[mmlu] tasks in {ensure_tasks()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
