"""What one prediction is asked about, validated field by field (the names are the run
settings' names where a run has them; see profiles/_defaults.toml)."""

from dataclasses import dataclass, fields

from bench.errors import BenchError, choices_error
from bench.plan import activations, precision, terms
from bench.schema import METHODS

DEVICES = ("cpu", "cuda")
OFFLOADS = ("none", "optimizer", "all")
FSDP_ROOTS = ("whole", "split")  # bench.plan.sharding.ROOTS


@dataclass(frozen=True)
class Options:
    seq_len: int
    batch_size: int
    grad_checkpointing: bool = False
    optimizer: str = "adamw_torch"          # terms.OPTIMIZERS
    precision: str = None                   # fp32 | bf16-true | bf16-mixed | fp16-mixed (None/auto: by device)
    compute_dtype: str = None               # the pre-policy setting, an alias: float32 | bfloat16 | float16
    device: str = "cuda"
    lora_r: int = 8
    target_modules: object = "all-linear"   # or module names, e.g. ["q_proj", "v_proj"]
    lora_dropout: float = 0.0
    adapter_dtype: str = "float32"          # peft's autocast_adapter_dtype; torchtune keeps adapters in bf16
    kbit_upcast: bool = False               # price prepare_model_for_kbit_training's fp32 upcast
    double_quant: bool = True
    base_bits: int = 4                      # 2 prices a hypothetical 2-bit base with NF4's constants
    loss: str = "standard"                  # activations.LOSSES
    keep_logits: bool = False               # the training loop holds the model output through backward
    compile: bool = False                   # torch.compile: fused RMSNorm/SiLU, recomputed log_softmax
    optimizer_in_backward: bool = False     # step each parameter in its gradient hook (torchtune)
    activation_offload: bool = False        # saved activations moved to CPU as they are made
    packing: bool = False                   # packed sequences: no padding, no 4-D attention mask
    gpus: int = 1                           # FSDP over N GPUs (figures per GPU)
    offload: str = "none"                   # OFFLOADS: optimizer states / all state to CPU
    fsdp_root: str = "whole"                # FSDP_ROOTS: embeddings + lm_head in the root unit, or units of their own
    baseline_bytes: int = None              # CPU: the record's measured interpreter + libraries RSS

    def __post_init__(self):
        for name in ("seq_len", "batch_size", "lora_r", "gpus", "base_bits"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                label = {"seq_len": "sequence length", "batch_size": "batch size"}.get(name, name)
                raise BenchError(f"{label} must be a positive integer, got {value!r}")
        for name, value, valid in (("optimizer", self.optimizer, terms.OPTIMIZERS),
                                   ("device", self.device, DEVICES), ("offload", self.offload, OFFLOADS),
                                   ("fsdp root", self.fsdp_root, FSDP_ROOTS),
                                   ("loss", self.loss, activations.LOSSES)):
            if value not in valid:
                raise choices_error(name, value, valid)
        if not 0 <= self.lora_dropout < 1:
            raise BenchError(f"lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        if self.adapter_dtype not in precision.DTYPE_BYTES:
            raise choices_error("adapter dtype", self.adapter_dtype, tuple(precision.DTYPE_BYTES))
        self.policy()  # validates precision / compute_dtype

    def policy(self) -> str:
        return precision.resolve(precision=self.precision, compute_dtype=self.compute_dtype, device=self.device)


def build(kwargs: dict) -> Options:
    """Options from keyword arguments; an unknown name is one error listing the valid ones."""
    names = [f.name for f in fields(Options)]
    unknown = [k for k in kwargs if k not in names]
    if unknown:
        raise BenchError(f"unknown planner option {unknown[0]!r}; valid options: {', '.join(names)}")
    return Options(**kwargs)


def check_method(method: str) -> None:
    if method not in METHODS:
        raise choices_error("method", method, METHODS)
