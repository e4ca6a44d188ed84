"""The planner's wall-time estimate of one run, before it runs: what `run --dry-run` prints and the
matrix's ETA starts from.

    seconds = run_seconds(spec=spec, config=config, matmul_gflops=105.0)   # {"train_s", ..., "total_s"}

Training costs the FLOPs of bench.measure.flops (PaLM's count, frozen weights priced right) for
steps x batch x seq_len tokens, at TRAIN_EFFICIENCY of the matmul rate calibrated on the run's
device and compute dtype (bench.measure.matmul, measured in a child by bench.run.dry_run.calibrate). Scoring costs
a measured time per question per task, scaled by the model's forward FLOPs per token against the
reference model's and by the reference machine's matmul rate against this one's. The constants
were measured on reports/samples/cpu-default and cpu-quality (smollm2-135m, fp32, 2 CPU cores,
matmul 100.6-108.4 GFLOP/s); the ETA blends in the measured times of finished runs (bench.run.session).
No torch here, and no measurement: the caller hands in the matmul rate.
"""

import json
from functools import lru_cache
from pathlib import Path

from bench.method_table import BY_NAME
from bench.models.random_weights import SHAPE_PREFIX, is_shape

REFERENCE_MODEL = "smollm2-135m"  # the planner preset the constants below were measured on
REFERENCE_GFLOPS = 105.0          # its machine's fp32 matmul rate (cpu-default records: 100.6-108.4)
TRAIN_EFFICIENCY = 0.5            # train-phase FLOP/s over matmul rate, cpu-default: full 0.60, lora 0.48, qlora 0.42;
                                  # cpu-quality lora 0.55
RUN_FIXED_S = 15.0                # start, imports, tokenisation: base runs' wall less their phases, 14.6 and 13.0 s
TRAINED_EXTRA_S = 35.0            # a trained run's profiled breakdown step and checks: lora's wall less phases
                                  # (48 and 51 s) less RUN_FIXED_S
LOAD_S = 3.0                      # load phase of the reference model (2.4-3.6 s; qlora 6.6), scaled by parameters
EVAL_FIXED_S = 27.0               # eval phase less the timed tasks, cpu-default base: 69.6 - 27.2 (MMLU) - 16.0 (ARC):
                                  # held-out loss, lm-eval's task index and wrapping the model
# Seconds per question on the reference: MMLU 27.2 s / 57 and 28.3 / 57 (cpu-default, cpu-quality base);
# ARC-Easy 16.0 / 40 and 170.4 / 400; HellaSwag and PIQA 43 s for 20 + 20 (profiles/default.toml's
# note). ARC-Challenge and WinoGrande were not timed: taken as ARC-Easy and PIQA, their closest shapes.
SECONDS_PER_QUESTION = {"mmlu": 0.49, "ftbench_arc_easy": 0.42, "ftbench_arc_challenge": 0.42,
                        "ftbench_openbookqa": 0.42, "ftbench_hellaswag": 1.05, "ftbench_piqa": 1.05,
                        "ftbench_winogrande": 1.05}
OTHER_TASK_S = 0.5                # a task named in --tasks, per question: MMLU's rate, unmeasured


def forward_flops(config: dict, *, seq_len: int) -> int:
    """Forward FLOPs per token: 2 per matmul weight (lm_head counted even when tied) plus attention."""
    from bench.measure.flops import per_token
    from bench.plan import params, presets

    config = presets.validate(config)
    n = params.counts(config)
    matmul = n["linear"] + (n["lm_head"] or n["embed"])
    attention = per_token(frozen=0, trainable=0, layers=config["num_hidden_layers"],
                          heads=config["num_attention_heads"], head_dim=config["head_dim"], seq_len=seq_len)
    return 2 * matmul + attention // 3  # attention's backward is twice its forward (bench.measure.flops)


def train_flops(config: dict, *, method: str, seq_len: int, lora_r: int, target_modules) -> int:
    """Training FLOPs per token (bench.measure.flops.per_token) from the config, before loading."""
    from bench.measure.flops import per_token
    from bench.plan import params, presets

    config = presets.validate(config)
    n = params.counts(config)
    matmul = n["linear"] + (n["lm_head"] or n["embed"])
    if method == "full":
        frozen, trainable = 0, matmul
    else:
        adapters = params.lora_counts(config, r=lora_r, targets=target_modules, dora=BY_NAME[method].dora)
        frozen, trainable = matmul, adapters["params"]
    return per_token(frozen=frozen, trainable=trainable, layers=config["num_hidden_layers"],
                     heads=config["num_attention_heads"], head_dim=config["head_dim"], seq_len=seq_len)


def questions(spec: dict) -> dict:
    """{task: questions scored} for one run: MMLU (limit per subject), the target task, the suite."""
    from bench.evaluate.targets import suite

    out = {}
    if spec.get("mmlu"):
        out["mmlu"] = mmlu_questions(spec["mmlu_limit"])
    if spec.get("target_task"):
        out[spec["target_task"]] = spec["target_limit"] or _test_size(spec["data_source"])
    for name in spec.get("forget_tasks") or ():
        task = suite.SUITE[name]
        out[task.task] = min(spec["forget_limit"] or task.questions, task.questions)
    for name in spec.get("tasks") or ():
        out[name] = None  # unknown size: counted at MMLU's limit per task
    return out


@lru_cache(maxsize=None)
def mmlu_questions(limit) -> int:
    """MMLU questions scored at `limit` per subject (None: all 14,042), from the local test data."""
    from bench.evaluate.mmlu import data, tasks

    sizes = [_lines(data.split_file(s, "test")) for s in tasks.builtin_subjects()]
    if limit is None:
        return sum(s for s in sizes if s) if all(sizes) else 14_042
    return sum(min(limit, s) if s else limit for s in sizes)


def _test_size(source: str):
    from bench.data import builtin

    return _lines(builtin.split_file(source, "test")) if source in builtin.TASKS else None


def _lines(path: Path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return None


def run_seconds(*, spec: dict, config: dict, matmul_gflops: float) -> dict:
    """{"load_s", "train_s", "eval_s", "fixed_s", "total_s"}: the estimated wall time of one run."""
    from bench.plan import params, presets

    speed = matmul_gflops / REFERENCE_GFLOPS
    reference = presets.load(REFERENCE_MODEL)[1]
    scale = forward_flops(config, seq_len=spec["seq_len"]) / forward_flops(reference, seq_len=spec["seq_len"])
    size = params.counts(presets.validate(config))["total"] / params.counts(presets.validate(reference))["total"]
    trained = spec["method"] != "base"
    tokens = spec["steps"] * spec["batch_size"] * spec.get("grad_accum", 1) * spec["seq_len"] if trained else 0
    train_s = (tokens * train_flops(config, method=spec["method"], seq_len=spec["seq_len"], lora_r=spec["lora_r"],
                                    target_modules=spec["target_modules"])
               / (matmul_gflops * 1e9 * TRAIN_EFFICIENCY)) if trained else 0.0
    eval_s = 0.0
    if not is_shape(spec["model"]):  # a shape model is not scored (bench.evaluate)
        per_question = sum((n if n is not None else mmlu_questions(spec["mmlu_limit"]))
                           * SECONDS_PER_QUESTION.get(task, OTHER_TASK_S) for task, n in questions(spec).items())
        eval_s = (EVAL_FIXED_S + per_question) * scale / speed
    fixed_s = RUN_FIXED_S + (TRAINED_EXTRA_S * scale / speed if trained else 0.0)
    load_s = LOAD_S * size
    return {"load_s": load_s, "train_s": train_s, "eval_s": eval_s, "fixed_s": fixed_s,
            "total_s": load_s + train_s + eval_s + fixed_s}


def model_config(spec: dict) -> dict | None:
    """The run's config.json (a shape model's preset), or None where neither can be read."""
    from bench.plan import presets

    path = Path(spec.get("model_path") or "") / "config.json"
    if path.is_file():
        return json.loads(path.read_text())
    name = str(spec["model"]).removeprefix(SHAPE_PREFIX)
    return presets.load(name)[1] if name in presets.preset_names() else None
