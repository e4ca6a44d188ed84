"""What one prediction is asked about, validated field by field (the names are the run
settings' names where a run has them; see profiles/_defaults.toml)."""

from dataclasses import dataclass, fields

from bench.plan import activations, dtype_bytes as precision, terms
from bench.results.schema import METHODS
from bench.util.errors import BenchError, choices_error

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


def from_run(run: dict, *, policy: str = None, device: str = None, baseline_bytes: int = None,
             kbit_upcast: bool = False) -> dict:
    """bench.plan.estimate's options (all but `config` and `method`) for one run: a spec, or a
    record (its `config` block is the spec; its precision and memory blocks say what ran). Every
    place that prices a run that ran or will run goes through here: the worker's own estimate
    (bench.plan.for_run), the report (bench.results.report.scale), the calibration (bench.plan.calibration),
    `fit`'s probes (bench.run.fit.probe), the driver's budget check (bench.run.budget) and `--dry-run`
    (bench.run.dry_run).

    policy: the precision policy where the record names none (for a spec: the resolved one;
    a spec's own "auto" means the device's default). device: where the record or spec does not
    say ("cuda:1" prices as "cuda"). baseline_bytes: a spec's measured CPU baseline (a record's
    is its memory.baseline_bytes); only a CPU run has one. kbit_upcast: peft's fp32 upcast of a
    k-bit base, which the harness never applies (bench.training.precision)."""
    record = isinstance(run.get("config"), dict)
    settings = run["config"] if record else run
    memory = (run.get("memory") or {}) if record else {}
    if record:
        precision = (run.get("precision") or {}).get("policy") or policy
    else:
        precision = policy or (None if settings.get("precision") in (None, "auto") else settings["precision"])
    device = str(memory.get("device") or device or settings.get("device") or "cpu").split(":")[0]
    if record:
        baseline_bytes = memory.get("baseline_bytes")
    options = dict(seq_len=settings["seq_len"], batch_size=settings["batch_size"],
                   grad_checkpointing=settings["grad_checkpointing"], optimizer=settings["optimizer"],
                   precision=precision, kbit_upcast=kbit_upcast, device=device, lora_r=settings["lora_r"],
                   target_modules=settings["target_modules"], lora_dropout=settings["lora_dropout"],
                   packing=settings.get("packing", False), baseline_bytes=baseline_bytes if device == "cpu" else None)
    if precision is None and settings.get("compute_dtype"):  # a schema-v1 record: its dtype named the policy
        options["compute_dtype"] = settings["compute_dtype"]
    return options
