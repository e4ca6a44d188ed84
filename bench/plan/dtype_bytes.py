"""Precision policies, as the run setting `precision` names them, in bytes per element.

  fp32        weights, gradients and activations in fp32.
  bf16-true   weights, gradients and activations in bf16; no autocast, no master copy (what
              PEFT's method comparison and torchtune run).
  bf16-mixed  fp32 master weights and gradients; autocast runs matmuls in bf16, so linear
  fp16-mixed  outputs are 16-bit while the residual stream (embedding output plus fp32 adds)
              and the norms stay fp32; fp16 adds a GradScaler (no memory of note).

Adapters are fp32 under every policy (peft's autocast_adapter_dtype). No method gets peft's
k-bit fp32 upcast (`prepare_model_for_kbit_training`): embeddings, norms and lm_head keep the
policy's weight dtype, so LoRA and QLoRA differ only in the quantised linears. `kbit_upcast`
prices the upcast for users who run the HF recipe: those weights become fp32, and because
the embedding output is then fp32 the whole activation stream is fp32 too.
"""

from bench.util.errors import choices_error

POLICIES = {
    #              weights, activations (matmul outputs), residual stream, autocast
    "fp32":       {"weights": 4, "act": 4, "resid": 4, "autocast": False},
    "bf16-true":  {"weights": 2, "act": 2, "resid": 2, "autocast": False},
    "bf16-mixed": {"weights": 4, "act": 2, "resid": 4, "autocast": True},
    "fp16-mixed": {"weights": 4, "act": 2, "resid": 4, "autocast": True},
    # planner-only: what a legacy compute_dtype="float16" meant (fp16 weights trained directly)
    "fp16-true":  {"weights": 2, "act": 2, "resid": 2, "autocast": False},
}
PUBLIC = ("fp32", "bf16-true", "bf16-mixed", "fp16-mixed")
LEGACY = {"float32": "fp32", "bfloat16": "bf16-true", "float16": "fp16-true"}
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def resolve(*, precision, compute_dtype, device) -> str:
    """The policy name. `compute_dtype` is the pre-policy setting, kept as an alias; neither
    given: bf16-true on cuda (sm80+ is what the planner assumes), fp32 on cpu."""
    if compute_dtype not in (None, "auto") and compute_dtype not in LEGACY:
        raise choices_error("compute dtype", compute_dtype, tuple(LEGACY))
    if precision not in (None, "auto"):
        if precision not in POLICIES:
            raise choices_error("precision", precision, PUBLIC)
        return precision
    if compute_dtype not in (None, "auto"):
        return LEGACY[compute_dtype]
    return "fp32" if device == "cpu" else "bf16-true"


def dtypes(policy: str, *, kbit_upcast: bool = False, adapter_dtype: str = "float32") -> dict:
    """Bytes per element for each kind of tensor under `policy`. With kbit_upcast (k-bit
    methods only, decided by the caller) the unquantised weights and every activation are fp32."""
    p = dict(POLICIES[policy])
    if adapter_dtype not in DTYPE_BYTES:
        raise choices_error("adapter dtype", adapter_dtype, tuple(DTYPE_BYTES))
    p["adapter"] = DTYPE_BYTES[adapter_dtype]
    p["unquantised"] = 4 if kbit_upcast else p["weights"]
    if kbit_upcast:
        p.update(act=4, resid=4)
    return p
