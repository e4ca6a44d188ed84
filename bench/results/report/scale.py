"""The scale ladder from records alone: train-phase peak against parameter count, per method.

    ladder(records) -> Ladder | None   one point per (model, method), ok or oom, of the run setting
                                       (batch, sequence, precision, ...) with the most model sizes
    planner_lines(ladder)              bench.plan.estimate with the ladder's own settings at each
                                       measured size and at the family's presets beyond it, to 70B
    ratios(ladder), lora_advantage(ladder)

Sizes are compared only at one run setting: the default profile's 4 x 96 smollm2 runs beside a
1 x 256 ladder would not be a ladder. Components: each `memory.breakdown` category and each
planner term belongs to one of COMPONENTS (the tables below; docs/report.md). Nothing is fitted
here: the planner is called as it is. No pyecharts (scale_chart.py draws).
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from bench.models.random_weights import SHAPE_PREFIX, random_weights
from bench.util.errors import BenchError
from bench.util.units import gib, parse_size

COMPONENTS = ("weights", "gradients", "optimizer state", "activations", "the rest")
# memory.breakdown category -> component; parameters_* (any dtype) are weights
MEASURED = {"quant_constants": "weights", "adapters": "weights", "buffers": "weights",
            "gradients": "gradients", "optimizer_state": "optimizer state",
            "activations": "activations", "activation_gradients": "activations", "inputs": "activations",
            "temporaries": "the rest", "other_tensors": "the rest", "process_baseline": "the rest",
            "unattributed": "the rest"}
# planner term (estimate.terms) -> component; weights_* (any storage) are weights
PREDICTED = {"quant_constants": "weights", "adapters": "weights",
             "gradients": "gradients", "gradients_in_flight": "gradients",
             "optimizer_states": "optimizer state", "paged_optimizer_states": "optimizer state",
             "activations": "activations", "first_layer_activations": "activations",
             "logits_and_loss": "activations", "attention_mask": "activations",
             "autocast_weight_copies": "activations", "dora_weight_norm": "activations", "inference": "activations",
             "held_logits": "activations", "hidden_gradient": "activations", "head_gradient": "activations",
             "optimizer_temporaries": "the rest", "baseline": "the rest", "allocator": "the rest",
             "allocator_phases": "the rest", "fsdp_stream_pool": "the rest"}
# What makes two runs one ladder: every setting that changes memory except the model.
SETTINGS = ("device", "seq_len", "batch_size", "grad_accum", "grad_checkpointing", "optimizer", "precision",
            "lora_r", "target_modules", "lora_dropout", "packing")
# Planner presets beyond the largest measured size, by the family its name starts with.
FAMILIES = {"llama-3": ("llama-3.2-1b", "llama-3.2-3b", "llama-3-8b", "llama-3-70b"),
            "qwen2.5": ("qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-3b", "qwen2.5-7b", "qwen2.5-14b", "qwen2.5-32b",
                        "qwen2.5-72b"),
            "llama-2": ("llama-2-7b", "llama-2-70b")}
DEFAULT_FAMILY = "llama-3"
TRAINED = ("ok", "oom")


def component(name: str, *, measured: bool) -> str:
    """The component a breakdown category (measured) or a planner term names; unknown ones are 'the rest'."""
    table = MEASURED if measured else PREDICTED
    if name in table:
        return table[name]
    if name.startswith("parameters" if measured else "weights"):
        return "weights"
    return "the rest"


def _sum_by_component(items: dict, *, measured: bool) -> dict:
    out = dict.fromkeys(COMPONENTS, 0)
    for name, value in items.items():
        out[component(name, measured=measured)] += int(value or 0)
    return out


def measured_components(record: dict) -> dict | None:
    """memory.breakdown as COMPONENTS (unattributed in 'the rest': they sum to the measured peak), or None."""
    block = (record.get("memory") or {}).get("breakdown") or {}
    if "categories" not in block:
        return None
    return _sum_by_component(dict(block["categories"], unattributed=block.get("unattributed_bytes", 0)), measured=True)


def predicted_components(estimate: dict) -> dict:
    """estimate.terms as COMPONENTS (they sum to the estimate's total_bytes)."""
    return _sum_by_component(estimate.get("terms") or {}, measured=False)


def setting(record: dict) -> tuple:
    config = record.get("config") or {}
    return tuple(json.dumps(config.get(name), sort_keys=True) for name in SETTINGS)


def model_config(record: dict):
    """(preset label, config) of the record's model: `shape:NAME` or a preset name, else the
    model directory's config.json when it is still there; None when neither is found."""
    return _config_and_problem(record)[0]


def config_problem(record: dict) -> str:
    """Why the planner has no config for the record's model: none found, or one it cannot price."""
    return _config_and_problem(record)[1] or "no config found"


def _config_and_problem(record: dict) -> tuple:
    from bench.plan import presets

    name = str(record.get("model"))
    name = name.removeprefix(SHAPE_PREFIX)
    candidates = [name] if name in presets.preset_names() or name.endswith(".json") else []
    candidates.append(str(Path(str(record.get("model_path") or "")) / "config.json"))
    problem = None
    for candidate in candidates:
        try:
            return presets.load(candidate), None
        except BenchError as exc:
            if Path(candidate).is_file():  # a config the planner cannot price says more than a missing one
                problem = f"the planner cannot price its config: {exc}"
    return None, problem


def params_text(n: int) -> str:
    """A parameter count at a readable scale: '3.21B', '135M', '1.2M', '34K'."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.2f}{unit}" if unit == "B" else f"{value:.3g}{unit}"
    return str(int(n))


def train_peak(record: dict):
    return ((record.get("memory") or {}).get("train") or {}).get("peak_bytes")


def budget_of(record: dict):
    text = (record.get("config") or {}).get("max_memory")
    try:
        return parse_size(text) if text else None
    except BenchError:
        return None


@dataclass
class Ladder:
    points: list  # one dict per (model, method): model, method, status, params, peak_bytes, budget_bytes, ...
    sizes: list  # [(params, model)] ascending
    configs: dict  # model -> (label, config) or None
    templates: dict  # method -> the record whose settings the planner line uses
    setting: dict  # SETTINGS -> value, and the precision policy that ran
    machine_bytes: int | None
    budget_bytes: int | None
    notes: list = field(default_factory=list)
    config_problems: dict = field(default_factory=dict)  # model -> why configs[model] is None


def _group(records: list) -> list:
    """The trained ok/oom records of the run setting with the most distinct models."""
    trained = [r for r in records if r.get("method") not in (None, "base") and r.get("status") in TRAINED]
    groups = {}
    for r in trained:
        groups.setdefault(setting(r), []).append(r)
    if not groups:
        return []
    return max(groups.values(), key=lambda rs: len({r.get("model") for r in rs}))


def _pick(runs: list) -> dict:
    """Of repeats of one (model, method): an ok one with the median train peak, else the last."""
    ok = sorted((r for r in runs if r["status"] == "ok" and train_peak(r)), key=train_peak)
    return ok[(len(ok) - 1) // 2] if ok else runs[-1]


def _estimate(record: dict):
    """The record's estimate when it has a figure (a planner gap records {"error": ...} instead)."""
    estimate = record.get("estimate")
    return estimate if isinstance(estimate, dict) and estimate.get("total_bytes") else None


def _params(model: str, runs: list, config) -> int | None:
    """The model's size without adapters: the planner's count from its config, else the records'
    count (a peft model's total includes its adapters: total - trainable)."""
    if config:
        from bench.plan import params
        return params.counts(config[1])["total"]
    counted = [base_params(r) for r in runs]
    return max((c for c in counted if c), default=None)


def base_params(record: dict) -> int | None:
    """params.total without the adapters a peft model adds (total - trainable), or None."""
    counted = record.get("params") or {}
    if not counted.get("total"):
        return None
    return counted["total"] - (0 if record.get("method") in ("full", "base") else counted.get("trainable") or 0)


def _machine(records: list) -> int | None:
    for r in records:
        env = r.get("env") or {}
        on_gpu = str((r.get("memory") or {}).get("device") or "").startswith("cuda")
        value = env.get("gpu_memory_bytes") if on_gpu else env.get("ram_bytes")
        if value:
            return int(value)
    return None


def ladder(records: list) -> Ladder | None:
    """The ladder, or None when the results hold fewer than two model sizes at one run setting."""
    group = _group(records)
    by_key, notes = {}, []
    for r in group:
        by_key.setdefault((r["model"], r["method"]), []).append(r)
    configs = {model: model_config(r) for (model, _), runs in by_key.items() for r in runs[:1]}
    problems = {model: config_problem(r) for (model, _), runs in by_key.items() for r in runs[:1]
                if configs[model] is None}
    points, sizes = [], {}
    for (model, method), runs in by_key.items():
        size = _params(model, [r for (m, _), rs in by_key.items() if m == model for r in rs], configs[model])
        if size is None:
            notes.append(f"{model}: no parameter count in its records and no config to count from; left out")
            continue
        if len(runs) > 1:
            notes.append(f"{model} {method}: {len(runs)} runs; the one with the median train peak is shown")
        pick = _pick(runs)
        sizes[model] = size
        points.append({"model": model, "method": method, "status": pick["status"], "params": size,
                       "peak_bytes": train_peak(pick) if pick["status"] == "ok" else None,
                       "reached_bytes": train_peak(pick), "budget_bytes": budget_of(pick),
                       "components": measured_components(pick) if pick["status"] == "ok" else None,
                       "estimate": _estimate(pick), "run_id": pick.get("run_id"), "error": pick.get("error"),
                       "random_weights": random_weights(pick)})
    if len(set(sizes.values())) < 2:
        return None
    left = len([r for r in records
                if r.get("method") not in (None, "base") and r.get("status") in TRAINED]) - len(group)
    if left:
        notes.append(f"{left} trained run(s) at other settings (batch, sequence, precision, ...) are left out: "
                     "a ladder compares sizes at one setting")
    ok = [r for r in group if r["status"] == "ok"]
    templates = {}
    for r in sorted(group, key=lambda r: sizes.get(r["model"], 0)):
        if r["status"] == "ok" or r["method"] not in templates:
            templates[r["method"]] = r
    config = group[0].get("config") or {}
    policies = sorted({(r.get("precision") or {}).get("policy") for r in ok} - {None})
    budgets = sorted({b for b in (budget_of(r) for r in group) if b})
    return Ladder(points=sorted(points, key=lambda p: (p["params"], p["method"])),
                  sizes=sorted((s, m) for m, s in sizes.items()), configs=configs, templates=templates,
                  setting=dict({name: config.get(name) for name in SETTINGS}, policy=", ".join(policies) or None),
                  machine_bytes=_machine(group), budget_bytes=budgets[-1] if budgets else None, notes=notes,
                  config_problems=problems)


def plan_options(record: dict, *, policy=None) -> dict:
    """The planner's options for a run, as the worker's own estimate has them (bench.plan.options.from_run)."""
    from bench.plan.options import from_run

    return from_run(dict(record, config=record.get("config") or {}), policy=policy)


def plan(record: dict, *, config: dict, method: str, policy=None) -> dict:
    """bench.plan.estimate for `config` with `record`'s settings; as the worker does, the allocator
    term is dropped when the run set MALLOC_MMAP_THRESHOLD_ (bench.plan.predict.without_retention)."""
    from bench.plan import estimate
    from bench.plan.predict import without_retention

    options = plan_options(record, policy=policy)
    return without_retention(estimate(config=config, method=method, **options), device=options["device"],
                             mmap_threshold=(record.get("config") or {}).get("cpu_malloc_mmap_threshold"))


def _extension(ladder: Ladder) -> list:
    """(params, label, config) of the family's presets larger than the largest measured size."""
    from bench.plan import params, presets

    largest, model = ladder.sizes[-1]
    label = (ladder.configs.get(model) or ("",))[0]
    family = next((f for f in FAMILIES if label.startswith(f)), DEFAULT_FAMILY)
    out = []
    for name in FAMILIES[family]:
        config = presets.load(name)[1]
        size = params.counts(config)["total"]
        if size > largest * 1.05:
            out.append((size, name, config))
    return out


def planner_lines(ladder: Ladder) -> tuple:
    """({method: [{params, label, total_bytes, measured}]}, notes): the planner at every measured
    size (the model's own config) and at the family's presets beyond it, one line per method."""
    notes, lines = [], {}
    policy = ladder.setting.get("policy")
    sizes = [(s, ladder.configs.get(m)) for s, m in ladder.sizes]
    for _, model in ladder.sizes:
        if not ladder.configs.get(model):
            why = ladder.config_problems.get(model, "no config found")
            notes.append(f"{model}: {why}; the planner line skips that size")
    points = [(s, c[0], c[1], True) for s, c in sizes if c] + [(s, n, c, False) for s, n, c in _extension(ladder)]
    for method, template in ladder.templates.items():
        line = []
        for size, label, config, measured in points:
            try:
                total = plan(template, config=config, method=method, policy=policy)["total_bytes"]
            except (BenchError, KeyError, TypeError) as exc:  # an old record may lack a setting: no point
                notes.append(f"planner, {method} at {label}: {exc!r}")
                continue
            line.append({"params": size, "label": label, "total_bytes": total, "measured": measured})
        lines[method] = line
    extended = [n for _, n, _, m in points if not m]
    if extended:
        notes.append(f"planner line beyond the measured sizes: the presets {', '.join(extended)}, "
                     "with the ladder's settings")
    return lines, notes


def _by_size(ladder: Ladder) -> dict:
    out = {}
    for p in ladder.points:
        out.setdefault((p["params"], p["model"]), {})[p["method"]] = p
    return dict(sorted(out.items()))


def _peak_text(point) -> str:
    if point is None:
        return "not run"
    if point["status"] == "oom":
        budget = point["budget_bytes"]
        return f"oom (> {gib(budget):.1f} GiB budget)" if budget else "oom"
    return f"{gib(point['peak_bytes']):.2f} GiB"


def ratios(ladder: Ladder) -> list:
    """Per measured size: each of full, lora and qlora's train peak and the ratio full : lora : qlora
    (qlora = 1); a ratio needs all three ok, or full out of memory (then '> budget / qlora')."""
    rows = []
    for (size, model), by_method in _by_size(ladder).items():
        peaks = {m: by_method.get(m) for m in ("full", "lora", "qlora")}
        ok = {m: p["peak_bytes"] for m, p in peaks.items() if p and p["status"] == "ok"}
        ratio, full = None, peaks["full"]
        if len(ok) == 3:
            ratio = f"{ok['full'] / ok['qlora']:.2f} : {ok['lora'] / ok['qlora']:.2f} : 1"
        elif set(ok) == {"lora", "qlora"} and full and full["status"] == "oom" and full["budget_bytes"]:
            ratio = f"> {full['budget_bytes'] / ok['qlora']:.2f} : {ok['lora'] / ok['qlora']:.2f} : 1"
        rows.append({"model": model, "params": size, **{m: _peak_text(p) for m, p in peaks.items()},
                     "ratio": ratio, "peaks": ok})
    return rows


def lora_advantage(ladder: Ladder) -> str:
    """Where LoRA's train peak first drops below full fine-tuning's, with the measurements either side."""
    rows = [(model, size, by.get("full"), by.get("lora")) for (size, model), by in _by_size(ladder).items()
            if by.get("lora") and by["lora"]["status"] == "ok" and by.get("full")]
    if not rows:
        return "LoRA against full fine-tuning: no size has both a LoRA run that finished and a full run."

    def below(full, lora):  # a full run that ran out of memory under a budget above LoRA's peak needed more
        if full["status"] == "oom":
            return bool(full["budget_bytes"]) and lora["peak_bytes"] < full["budget_bytes"]
        return lora["peak_bytes"] < full["peak_bytes"]

    def shown(model, size, full, lora):
        return f"{model} ({params_text(size)} params): lora {_peak_text(lora)}, full {_peak_text(full)}"

    first = next((i for i, (_, _, full, lora) in enumerate(rows) if below(full, lora)), None)
    if first is None:
        return ("LoRA's train peak is not below full fine-tuning's at any measured size; at the largest, "
                + shown(*rows[-1]) + ".")
    text = f"LoRA's train peak is below full fine-tuning's from {shown(*rows[first])}"
    text += f"; at the size below, {shown(*rows[first - 1])}." if first else ", the smallest size measured."
    later = [r for r in rows[first + 1:] if not below(r[2], r[3])]
    if later:
        text += " Not at every larger size: " + "; ".join(shown(*r) for r in later) + "."
    return text

