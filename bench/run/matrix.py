"""Settings -> the run matrix: one fully resolved RunSpec (a flat dict) per (model, method, seed).

Everything a run depends on is in its spec, so `spec_hash` names the work, `compare_key` (the
hash without the method) names a matched comparison at one seed, and `group_key` (without method
and seed) names the comparison across seeds. `base` trains nothing, so it runs once per model,
with the first seed. Device and precision stay as requested ("auto" included): the worker
resolves them on the machine that runs, and the record says what it chose. No torch here.
"""

import hashlib
import json
import re
import time

from bench import method_table
from bench.models import linear_module_names, resolve, source_of
from bench.results.schema import NON_WORK_FIELDS
from bench.util.errors import BenchError


def build_matrix(settings: dict) -> list:
    """All (model, method, seed) specs, models resolved and LoRA targets checked, or one BenchError."""
    run, lora, ev, data = settings["run"], settings["lora"], settings["eval"], settings["data"]
    common = {
        **{k: v for k, v in run.items() if k not in ("models", "methods", "seeds", "skip")},
        "data_source": data_source(data["source"]), "data_format": data["format"],
        "train_on_prompt": data["train_on_prompt"], "packing": data["packing"],
        "heldout_examples": data["heldout"], "max_unsupervised_pct": data["max_unsupervised_pct"],
        # only when set, so the specs (and spec hashes) of the default stay what they were
        **({"keep_duplicates": True} if data["keep_duplicates"] else {}),
        **({"skip_bad_rows": True} if data["skip_bad_rows"] else {}),
        "lora_r": lora["r"], "lora_alpha": lora["alpha"], "lora_dropout": lora["dropout"],
        "target_modules": lora["target_modules"],
        "mmlu": ev["mmlu"], "mmlu_shots": ev["shots"], "mmlu_limit": ev["limit"] or None,
        "target_task": target_task(data["source"]) if ev["target"] else None,
        "target_limit": ev["target_limit"] or None,
        "eval_batch_size": ev["batch_size"], "tasks": list(ev["tasks"]),
        # only when on, so the specs (and spec hashes) of profiles without the suite stay what they were
        **({"forget_tasks": list(ev["forget"]), "forget_limit": ev["forget_limit"] or None} if ev["forget"] else {}),
        "profile": settings.get("profile"),
    }
    specs = []
    for model in dict.fromkeys(run["models"]):
        path = resolve(model, trust_remote_code=run["trust_remote_code"])
        # a hub snapshot's id and commit, to reproduce the run; hub models only, so other specs stay as they were
        source = {"model_source": found} if (found := source_of(path)) else {}
        _check_targets(model, path, lora["target_modules"], run["methods"])
        for method in dict.fromkeys(run["methods"]):
            if f"{model}:{method}" in run.get("skip", ()):
                continue
            for seed in run["seeds"][:1] if method == "base" else run["seeds"]:
                spec = distribute({**common, "model": model, "model_path": str(path), **source, "method": method,
                                   "seed": seed})
                specs.append(finish_spec(spec))
    return specs


def data_source(source: str) -> str:
    """A built-in data name as is, or a local file as its absolute path (BenchError otherwise)."""
    from bench.data import resolve

    return resolve(source)


def target_task(source: str):
    """The lm-eval task scoring a built-in source's test split, or None (user files, mmlu-validation)."""
    from bench.evaluate.targets import target_task as task_for

    return task_for(source)




def distribute(spec: dict) -> dict:
    """Resolve nproc/strategy. A one-process spec carries neither key, so its spec_hash is the
    same as before distributed runs existed and old baselines still match."""
    nproc, strategy = spec.pop("nproc", 1), spec.pop("strategy", "auto")
    if nproc == 1 or not method_table.method(spec["method"]).trains:
        return spec
    if strategy == "auto":
        strategy = method_table.method(spec["method"]).auto_strategy
    why_not = method_table.method(spec["method"]).no_fsdp
    if why_not and strategy == "fsdp":
        raise BenchError(f"{spec['method']} cannot run under fsdp ({why_not}); valid choices: ddp, auto")
    return {**spec, "nproc": nproc, "strategy": strategy}


# where the weights were found differs by machine (a path, the user's HF cache), not the work
LOCATION = ("profile", "model_path", "model_source")


def finish_spec(spec: dict) -> dict:
    """Attach the hashes; the run_id is stamped by the launcher when the run starts."""
    spec["spec_hash"] = digest(spec, drop=NON_WORK_FIELDS + LOCATION)
    spec["compare_key"] = digest(spec, drop=NON_WORK_FIELDS + LOCATION + ("method",))
    # the group leaves out the process layout too, so `base` (always one process) pairs with
    # multi-process runs; compare tells layouts apart by arm (bench.results.compare.runs.arm_of)
    spec["group_key"] = digest(spec, drop=NON_WORK_FIELDS + LOCATION + ("method", "seed", "nproc", "strategy"))
    return spec


def digest(spec: dict, *, drop) -> str:
    kept = {k: v for k, v in spec.items()
            if k not in drop and k not in ("spec_hash", "compare_key", "group_key", "run_id")}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def run_id(spec: dict) -> str:
    """`<UTC time>-<model slug>-<method>-s<seed>-<hash8>`: unique, and safe as a file name whatever the model
    is called."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", spec["model"].replace("/", "__")).strip("._")[:60] or "model"
    return (f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{slug}-{spec['method']}-s{spec['seed']}"
            f"-{spec['spec_hash'][:8]}")


def _check_targets(model: str, path, targets, methods) -> None:
    if targets == "all-linear" or not set(method_table.ADAPTER) & set(methods):
        return
    wanted = [targets] if isinstance(targets, str) else list(targets)
    found = linear_module_names(path)
    missing = [t for t in wanted if t not in found]
    if missing or not wanted:
        raise BenchError(
            f"LoRA target modules {missing or wanted} match nothing in {model!r}; "
            f"valid choices: all-linear, {', '.join(sorted(found))}"
        )
