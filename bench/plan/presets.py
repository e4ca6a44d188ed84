"""Model configs for the planner: named presets (small JSON files beside this module) or any
local HF `config.json`. Only the arithmetic-relevant subset is read; nothing imports torch."""

import json
from pathlib import Path

from bench.plan.params import FAMILIES, TIED_BY_DEFAULT
from bench.util.errors import BenchError, choices_error

PRESET_DIR = Path(__file__).resolve().parent / "presets"

# Mixture-of-experts markers: Mixtral/PhiMoE/Grok (num_local_experts), Qwen-MoE/OLMoE/DBRX-style
# (num_experts), DeepSeek-V2/V3 (n_routed_experts), and model types that are MoE by name.
MOE_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
MOE_TYPES = ("mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3", "dbrx", "jamba", "olmoe",
             "phimoe", "granitemoe", "jetmoe", "arctic", "minimax")
# Fields without which no term can be computed.
REQUIRED = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


def preset_names() -> list:
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def load(name_or_path) -> tuple:
    """Return (label, config dict) for a preset name, a config.json path, a model directory, or a
    hub id (its config.json alone, from the user's HF cache or fetched into it, as `run` fetches)."""
    from bench.models.resolve import HUB_ID, looks_like_path

    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if text in preset_names():
        path, label = PRESET_DIR / f"{text}.json", text
    elif path.suffix == ".json" or path.name == "config.json" or looks_like_path(text):
        if not path.is_file():
            raise BenchError(f"model config {text!r} does not exist ({path.absolute()})")
        label = path.parent.name if path.name == "config.json" else path.stem
    elif HUB_ID.match(text) and ".." not in text:
        from bench.models import hub

        path, label = hub.config_file(text), text
    else:
        raise choices_error("model preset", text, preset_names() + ["<path to config.json>", "<hub id org/name>"])
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BenchError(f"cannot read model config {str(path)!r}: {exc}") from None
    return label, validate(config, where=str(path))


def refuse_unpriced(config: dict, *, where: str) -> None:
    """One error for an architecture the planner would price wrong: mixture-of-experts (its expert
    weights, router and token dispatch are not a dense MLP), a multimodal wrapper (its vision tower
    is not counted), or a model_type outside bench.plan.params.FAMILIES."""
    family = config["model_type"]
    experts = {k: config[k] for k in MOE_KEYS if isinstance(config.get(k), int) and config[k] > 1}
    if experts or family in MOE_TYPES or "moe" in str(family):
        what = ", ".join(f"{k} {v}" for k, v in experts.items()) or f"model_type {family!r}"
        raise BenchError(f"{where}: {family!r} is a mixture-of-experts model ({what}); the planner prices dense "
                         f"decoders only: {', '.join(FAMILIES)}")
    if family not in FAMILIES:
        extra = " (a multimodal wrapper: price its text_config as a file of its own)" if "text_config" in config else ""
        raise BenchError(f"{where}: model_type {family!r} is not one the planner prices{extra}; valid choices: "
                         f"{', '.join(FAMILIES)}")


def validate(config, *, where: str = "config") -> dict:
    """Check the fields the planner needs; return a normalised copy with defaults filled in."""
    if not isinstance(config, dict):
        raise BenchError(f"{where}: a model config must be a JSON object")
    refuse_unpriced(dict(config, model_type=config.get("model_type") or "llama"), where=where)
    missing = [k for k in REQUIRED if k not in config]
    if missing:
        raise BenchError(f"{where}: model config is missing required field(s) {', '.join(missing)} "
                         f"(needs {', '.join(REQUIRED)})")
    out = {k: v for k, v in config.items() if not k.startswith("_")}
    out.setdefault("model_type", "llama")
    out.setdefault("num_key_value_heads", out["num_attention_heads"])
    out.setdefault("tie_word_embeddings", out["model_type"] in TIED_BY_DEFAULT)
    if out.get("head_dim") is None:  # absent, or null as in some Mistral configs
        out["head_dim"] = out["hidden_size"] // out["num_attention_heads"]
    for key in REQUIRED + ("num_key_value_heads", "head_dim"):
        value = out[key]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise BenchError(f"{where}: {key} must be a positive integer, got {value!r}")
    if out["num_attention_heads"] % out["num_key_value_heads"]:
        raise BenchError(f"{where}: num_attention_heads {out['num_attention_heads']} is not a multiple "
                         f"of num_key_value_heads {out['num_key_value_heads']}")
    return out
