"""Generate ftbench's local target tasks from lm-eval's own built-in task files.

    python -m bench.evaluate.targets.tasks     # (re)generate <cache>/target_tasks/ if stale

For each built-in training task (bench.data.builtin.TASKS) lm-eval's installed YAML (e.g.
lm_eval/tasks/arc/arc_easy.yaml, its `include`s merged as lm-eval merges them) is copied with
two changes only: names gain an `ftbench_` prefix (task and tags, so they never collide with
the built-ins) and the dataset is the local JSONL unpacked by set-up instead of the hub's.
Prompt, choices, target, metrics and version are lm-eval's own, so scores compare with
lm-eval's `arc_easy`. Regenerated when lm-eval's version, the data location or this file changes.
"""

import json
import sys
from pathlib import Path

from bench.data import builtin
from bench.evaluate.mmlu.tasks import lm_eval_version
from bench.util import paths
from bench.util.atomic import replacing_dir
from bench.util.errors import BenchError

GENERATOR_VERSION = 2  # 2: the forgetting suite's tasks (bench.evaluate.targets.suite) in the same folder
PREFIX = "ftbench_"


def lm_eval_tasks_root() -> Path:
    """lm-eval's installed `tasks` folder, found without importing lm_eval."""
    import importlib.util

    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise BenchError("lm_eval is not installed; run `bash scripts/setup.sh`")
    return Path(list(spec.submodule_search_locations)[0]) / "tasks"


def target_task(source: str):
    """The lm-eval task scoring built-in source `source` (e.g. ftbench_arc_easy), None for others."""
    task = builtin.TASKS.get(source)
    return PREFIX + Path(task.lm_eval_yaml).stem if task else None


HUB_DATASETS = {"arc-easy": ("allenai/ai2_arc", "ARC-Easy"), "arc-challenge": ("allenai/ai2_arc", "ARC-Challenge"),
                "openbookqa": ("allenai/openbookqa", "main")}  # what lm-eval's own YAMLs load


def hub_from_local(original_load_dataset):
    """A `datasets.load_dataset` serving the hub datasets of lm-eval's own arc_easy, arc_challenge and
    openbookqa from the local JSONL, passing every other call through. Lets lm-eval's built-in task
    files run offline on ftbench's data, so the equivalence check compares prompts, not data."""
    local = {hub: source for source, hub in HUB_DATASETS.items()}

    def load_dataset(path=None, name=None, **kwargs):
        source = local.get((path, name))
        if source is None:
            return original_load_dataset(path=path, name=name, **kwargs)
        files = {split: str(builtin.split_file(source, split)) for split in builtin.SPLITS}
        return original_load_dataset("json", data_files=files, cache_dir=str(paths.hf_home() / "datasets"))
    return load_dataset


def tasks_dir() -> Path:
    return paths.cache_dir() / "target_tasks"


def load_yaml(path: Path) -> dict:
    """A task YAML with its `include`s merged first and its own keys winning, as lm-eval does."""
    import yaml

    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    includes = config.pop("include", [])
    merged = {}
    for name in includes if isinstance(includes, list) else [includes]:
        merged.update(load_yaml(path.parent / name))
    merged.update(config)
    return merged


def local_config(source: str) -> dict:
    """lm-eval's own config for `source`'s task, renamed and pointed at the local JSONL."""
    task = builtin.TASKS[source]
    config = load_yaml(lm_eval_tasks_root() / task.lm_eval_yaml)
    if PREFIX + config["task"] != target_task(source):
        raise BenchError(f"lm-eval's {task.lm_eval_yaml} names task {config['task']!r}, expected "
                         f"{target_task(source).removeprefix(PREFIX)!r}; this lm-eval version is not supported")
    config["task"] = PREFIX + config["task"]
    if "tag" in config:
        tags = config["tag"] if isinstance(config["tag"], list) else [config["tag"]]
        config["tag"] = [PREFIX + t for t in tags]
    config.pop("dataset_name", None)
    config["dataset_path"] = "json"
    config["dataset_kwargs"] = {
        "data_files": {split: str(builtin.split_file(source, split)) for split in builtin.SPLITS},
        "cache_dir": str(paths.hf_home() / "datasets"),
    }
    return config


def stamp() -> dict:
    from bench.evaluate.targets import suite

    return {"generator": GENERATOR_VERSION, "lm_eval": lm_eval_version(), "data": str(paths.task_data_dir()),
            "suite_data": str(suite.data_dir()) if suite.is_unpacked() else None,
            "lm_eval_tasks": str(lm_eval_tasks_root().resolve())}


def is_current(folder: Path) -> bool:
    try:
        return json.loads((folder / "STAMP.json").read_text()) == stamp()
    except (OSError, ValueError):
        return False


def _write(folder: Path) -> None:
    import yaml

    from bench.evaluate.targets import suite

    for source in builtin.TASKS:
        config = local_config(source)
        (folder / f"{config['task']}.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    if suite.is_unpacked():  # the forgetting suite, where set-up unpacked its data
        for name, config in suite.configs(lm_eval_tasks_root()).items():
            (folder / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    (folder / "STAMP.json").write_text(json.dumps(stamp(), indent=1))


def ensure_tasks() -> Path:
    """The generated task folder, (re)built atomically if missing or stale; needs the unpacked data."""
    if not builtin.is_unpacked():
        raise BenchError(f"built-in task data is missing from {paths.task_data_dir()}; {builtin.SETUP_HINT}")
    target = tasks_dir()
    if is_current(target):
        return target
    with replacing_dir(target) as staging:
        _write(staging)
    return target


def main() -> int:
    print(f"[targets] tasks in {ensure_tasks()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
