"""Validate the scoring options before any run starts. Imports neither torch nor lm_eval.

Task names are checked against lm-eval's installed task files (a text scan, about 0.3 s,
done only when extra tasks are named) and ftbench's generated local MMLU tasks. Whether a
built-in task's data is reachable offline is only known when it loads; `score` turns that
failure into a BenchError too.
"""

import difflib
import functools
import re

from bench.evaluate.mmlu import tasks as local_tasks
from bench.util.errors import BenchError

MAX_SHOTS = 25  # the range the issue allows for few-shot prompts
DEV_PER_SUBJECT = 5  # MMLU's dev split; lm-eval's first_n sampler asserts it is not asked for more
_NAME = re.compile(r"^(?:task|group|tag):\s*[\"']?([\w.\-]+)", re.M)


def local_task_names() -> set:
    """Every name the generated local MMLU folder defines (tasks, groups, tags)."""
    subjects = [p.stem for p in local_tasks.builtin_dir().glob("mmlu_*.yaml")]
    groups = [f"{local_tasks.GROUP}_{c}" for c in local_tasks.CATEGORIES]
    return ({local_tasks.GROUP} | {local_tasks.PREFIX + s for s in subjects}
            | set(groups) | {g + "_tasks" for g in groups})


@functools.lru_cache(maxsize=1)
def builtin_task_names() -> frozenset:
    """Names declared by lm-eval's installed task YAMLs (`task:`, `group:`, `tag:` lines)."""
    root = local_tasks.builtin_dir().parent.parent
    names = set()
    for path in root.rglob("*"):
        if path.suffix == ".yaml" or path.name.endswith("_yaml"):
            names.update(_NAME.findall(path.read_text(encoding="utf-8", errors="replace")))
    return frozenset(names)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(*, shots, limit, tasks) -> None:
    """Raise BenchError for shots outside 0-25 (or above MMLU's 5 dev questions), a limit that
    is neither a positive int nor None, or a task name lm-eval does not know."""
    if not _is_int(shots) or not 0 <= shots <= MAX_SHOTS:
        raise BenchError(f"mmlu shots {shots!r} is not valid; use an integer from 0 to {MAX_SHOTS} (usually 0 or 5)")
    if shots > DEV_PER_SUBJECT:
        raise BenchError(f"mmlu shots {shots} is more than the {DEV_PER_SUBJECT} dev questions per subject "
                         f"that MMLU's few-shot examples come from; use 0 to {DEV_PER_SUBJECT}")
    if limit is not None and (not _is_int(limit) or limit <= 0):
        raise BenchError(f"mmlu limit {limit!r} is not valid; use a positive integer "
                         "(first K test questions of every subject) or none for all")
    if isinstance(tasks, str) or not isinstance(tasks, (list, tuple)):
        raise BenchError(f"tasks {tasks!r} is not valid; give a list of lm-eval task names")
    if not tasks:
        return
    known = local_task_names()
    for name in tasks:
        if not isinstance(name, str) or not name:
            raise BenchError(f"task {name!r} is not valid; give lm-eval task names as strings")
        if name in known:
            continue
        known = known | builtin_task_names()
        if name not in known:
            near = difflib.get_close_matches(name, sorted(known), n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise BenchError(f"unknown task {name!r}: not an lm-eval task nor a local ftbench task{hint} "
                             "(list them with `lm_eval ls tasks`)")
