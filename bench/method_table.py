"""What each fine-tuning method is, as data: the one table that the record's schema, the matrix,
the planner and its sharding model, FSDP loading and the worker read.

Torch-free, so the driver and the planner can import it. How a method builds its model lives in
bench.training.methods, one builder per row here, attached by name. Adding a method is one row in
`TABLE`, one builder in bench.training.methods, and a test.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    name: str
    trains: bool                # base only scores: it trains nothing and always runs as one process
    adapter: bool               # a peft adapter on a frozen base; the rest of the model gets no gradient
    quant: str | None           # how bitsandbytes stores the base's decoder linears: "nf4", "int8", or None (dense)
    dora: bool                  # the adapter is DoRA's (magnitude and direction), not plain LoRA's
    auto_strategy: str | None   # what strategy "auto" resolves to when nproc > 1 (None: never more than one process)
    no_fsdp: str | None = None  # why FSDP cannot shard this base (None: it can)

    @property
    def kbit(self) -> bool:
        """A k-bit base: bitsandbytes quantises its decoder linears (peft's "kbit" training)."""
        return self.quant is not None


TABLE = (
    Method("base", trains=False, adapter=False, quant=None, dora=False, auto_strategy=None),
    Method("full", trains=True, adapter=False, quant=None, dora=False, auto_strategy="fsdp"),
    Method("lora", trains=True, adapter=True, quant=None, dora=False, auto_strategy="fsdp"),
    Method("qlora", trains=True, adapter=True, quant="nf4", dora=False, auto_strategy="fsdp"),
    Method("dora", trains=True, adapter=True, quant=None, dora=True, auto_strategy="fsdp"),
    # bitsandbytes int8 weights cannot be sharded, so lora8 replicates (DDP)
    Method("lora8", trains=True, adapter=True, quant="int8", dora=False, auto_strategy="ddp",
           no_fsdp="bitsandbytes int8 weights cannot be sharded"),
)

BY_NAME = {m.name: m for m in TABLE}
NAMES = tuple(m.name for m in TABLE)
ADAPTER = tuple(m.name for m in TABLE if m.adapter)
KBIT = tuple(m.name for m in TABLE if m.kbit)
# trained methods whose base FSDP can shard: under FSDP rank 0 alone reads the checkpoint (bench.training.fsdp_load)
FSDP_SHARDABLE = tuple(m.name for m in TABLE if m.trains and m.no_fsdp is None)
TRAINED = tuple(m.name for m in TABLE if m.trains)  # what `plan` prices and `fit` searches


def method(name: str) -> Method:
    """The table's row for `name` (KeyError for an unknown one: callers validate names against NAMES)."""
    return BY_NAME[name]
