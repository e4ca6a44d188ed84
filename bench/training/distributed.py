"""The worker's side of a run with nproc > 1, started by torchrun (see bench.run.launcher).

Each rank takes batch_size/nproc rows of each global micro-batch and trains the model wrapped in
DDP (replicas; every rank loads the model) or FSDP2 (`fully_shard`: parameters, gradients and
optimizer state sharded per decoder layer; rank 0 alone reads an unquantised checkpoint and the
others receive their shards from it, bench.training.fsdp_load). The loss of each rank is its token sum
over the *global* supervised-token
count of the step (bench.training.loop), times world size because both engines average gradients over
ranks, so the gradient and the reported (all-reduced) loss are those of the single-process run
on the same global batch. Each rank measures its own memory; rank 0 gathers the figures and is
the only rank that writes result.json. A one-process spec gets `Single`, whose steps are no-ops.

One device rule for collectives (`collective_device`): every tensor the harness hands to a
collective lives on the device the group's backend serves: the CPU for gloo, the rank's GPU for
NCCL, which has no CPU backend ("No backend type associated with device type cpu"). torch's own
object collectives (gather_object, broadcast_object_list) and state-dict broadcasts apply the
same rule themselves.
"""

import os
from datetime import timedelta

import torch


class Single:
    size, rank, strategy, writer = 1, 0, None, True

    def place(self, spec: dict) -> dict:
        return spec

    def build(self, spec: dict):
        """The model for this rank (bench.training.methods), before wrap."""
        from bench.training import methods

        return methods.build(self.place(spec))

    def shard(self, batches: list) -> list:
        return batches

    def wrap(self, model, spec: dict):
        return model

    def unwrap(self, model):
        return model

    def why_not_scoring(self) -> str | None:
        return None

    def reduce(self, loss: float, tokens: int):
        return loss, tokens

    def finish(self, record: dict) -> None:
        pass


def served_device_types(group=None) -> list:
    """The device types `group`'s backend takes tensors on, from its "device:backend" config
    (`gloo` serves cpu and cuda, `nccl` cuda only, `cuda:gloo` cuda only)."""
    import torch.distributed as dist

    served = []
    for entry in dist.get_backend_config(group).split(","):
        device, _, backend = entry.rpartition(":")
        served += [device] if device else dist.Backend.backend_capability[backend]
    return served


def collective_device(group=None, *, index: int = 0) -> torch.device:
    """Where the harness makes a tensor it hands to a collective on `group`: the CPU when the
    backend serves it (no copy), else the rank's accelerator `index` of the first type served."""
    served = served_device_types(group)
    return torch.device("cpu") if "cpu" in served else torch.device(served[0], index)


class Ranks(Single):
    def __init__(self, spec: dict, *, backend: str | None = None):
        """`backend`: the process group's, by default nccl on CUDA and gloo on the CPU (tests name
        one that serves no CPU, such as "cuda:gloo", to catch a CPU tensor handed to NCCL)."""
        import torch.distributed as dist

        self.dist = dist
        self.size, self.rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
        self.local_rank, self.writer = int(os.environ.get("LOCAL_RANK", 0)), self.rank == 0
        self.strategy, self.cuda = spec["strategy"], spec["device"] == "cuda"
        self.backend = backend or ("nccl" if self.cuda else "gloo")
        if self.cuda:
            if self.local_rank >= torch.cuda.device_count():
                from bench.util.errors import BenchError
                raise BenchError(f"--nproc {self.size} is more than the {torch.cuda.device_count()} GPU(s) visible "
                                 f"to this worker; valid choices: 1 to {torch.cuda.device_count()}")
            torch.cuda.set_device(self.local_rank)
        dist.init_process_group(self.backend, timeout=timedelta(seconds=spec["run_timeout_s"]))
        self.device = collective_device(index=self.local_rank)
        self.loading, self._rank0_state = "every rank", None

    def place(self, spec: dict) -> dict:
        return dict(spec, device=f"cuda:{self.local_rank}") if self.cuda else spec

    def shard(self, batches: list) -> list:
        """This rank's rows of every global micro-batch, with the global supervised-token count."""
        from bench.training.loop import supervised_tokens

        out = []
        for batch in batches:
            rows = batch["input_ids"].shape[0] // self.size
            mine = {k: v[self.rank * rows:(self.rank + 1) * rows] for k, v in batch.items()}
            mine["global_supervised"] = supervised_tokens(batch)  # the step's loss divides by the global count
            out.append(mine)
        return out

    def build(self, spec: dict):
        """FSDP with an unquantised base: rank 0 reads the checkpoint, every rank gets a meta model
        (bench.training.fsdp_load); otherwise every rank loads the model itself."""
        from bench.training import fsdp_load

        if not fsdp_load.applies(spec):
            return super().build(spec)
        self.loading = "rank 0, broadcast"
        model, self._rank0_state = fsdp_load.build(self.place(spec), rank=self.rank)
        return model

    def wrap(self, model, spec: dict):
        if self.strategy == "ddp":
            from torch.nn.parallel import DistributedDataParallel

            return DistributedDataParallel(model, device_ids=[self.local_rank] if self.cuda else None)
        model = _fully_shard(model, spec, size=self.size, device_type="cuda" if self.cuda else "cpu")
        if self.loading == "rank 0, broadcast":
            from bench.training import fsdp_load

            fsdp_load.distribute(model, self._rank0_state, rank=self.rank)
            self._rank0_state = None
        return model

    def unwrap(self, model):
        return model.module if self.strategy == "ddp" else model

    def why_not_scoring(self) -> str | None:
        """Why this rank does not score MMLU, or None. Rank 0 scores the whole DDP replica; FSDP
        holds only a shard per rank, and scoring a gathered copy is not implemented."""
        if self.rank != 0:
            return "scored on rank 0"
        return "not scored under fsdp (each rank holds a shard)" if self.strategy == "fsdp" else None

    def reduce(self, loss: float, tokens: int):
        total = torch.tensor([loss, float(tokens)], dtype=torch.float64, device=self.device)
        self.dist.all_reduce(total)
        return float(total[0]), int(total[1])

    def finish(self, record: dict) -> None:
        """Gather every rank's figures on rank 0: per-rank phase peaks, and the max over ranks as
        the run's peak (the device that must fit it is the fullest one)."""
        mine = {"rank": self.rank, "host": record["host"],
                "worker_peak_bytes": record["memory"].get("worker_peak_bytes"),
                "memory": {p: {k: v for k, v in (record["memory"].get(p) or {}).items() if k.endswith("_bytes")}
                           for p in ("load", "train", "eval")}}
        ranks = [None] * self.size if self.rank == 0 else None
        self.dist.gather_object(mine, ranks, dst=0)
        # No destroy_process_group(): it was the one place a rank was seen to hang after the
        # record was complete (2 in ~16 runs), waiting on a peer that had already left. The
        # gather above is the last collective; every rank then ends with os._exit (worker.main).
        if self.rank != 0:
            return
        for phase in ("load", "train", "eval"):
            peaks = [r["memory"][phase].get("peak_bytes") for r in ranks]
            if record["memory"].get(phase) and all(isinstance(p, int) for p in peaks):
                record["memory"][phase]["peak_bytes"] = max(peaks)
        record["memory"]["worker_peak_bytes"] = max(r["worker_peak_bytes"] or 0 for r in ranks)
        record["distributed"] = {"world_size": self.size, "backend": self.backend, "strategy": self.strategy,
                                 "launcher": "torchrun", "loading": self.loading, "ranks": ranks}


def _fully_shard(model, spec: dict, *, size: int, device_type: str):
    """FSDP2 per decoder layer, then the root: a layer's parameters are gathered only while it runs.
    Parameters are gathered in the policy's weight dtype, never cast by FSDP (a mixed policy gets
    its compute dtype from autocast, as in one process; casting would also reinterpret QLoRA's
    packed 4-bit storage), and gradients reduce in float32. Adapter weights in another dtype
    (peft's fp32 LoRA under bf16-true) are a unit of their own per layer, gathered in their own
    dtype: FSDP gives one unit one param_dtype, and the layer's would run the adapter in bf16,
    not the method one process measures."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    from bench.training.methods import DTYPES

    mesh = init_device_mesh(device_type, (size,))
    weights = DTYPES[spec["weights_dtype"]]
    policy = MixedPrecisionPolicy(param_dtype=weights, reduce_dtype=torch.float32)
    own_dtype = MixedPrecisionPolicy(param_dtype=None, reduce_dtype=torch.float32)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    layer_names = set(getattr(base, "_no_split_modules", None) or [])
    for module in model.modules():
        if type(module).__name__ in layer_names:
            adapters = _other_dtype(module, weights)
            if adapters:
                fully_shard(adapters, mesh=mesh, mp_policy=own_dtype)
            fully_shard(module, mesh=mesh, mp_policy=policy)
    adapters = _other_dtype(model, weights)  # outside the layers (e.g. an adapted lm_head)
    if adapters:
        fully_shard(adapters, mesh=mesh, mp_policy=own_dtype)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    return model


def _other_dtype(root, dtype) -> list:
    """The modules under `root`, outside any unit sharded already, whose own parameters are all
    trainable floating point of a dtype other than `dtype`: the adapter weights FSDP must not cast."""
    from torch.distributed.fsdp import FSDPModule

    sharded = {id(m) for unit in root.modules() if isinstance(unit, FSDPModule) and unit is not root
               for m in unit.modules()}
    found = []
    for module in root.modules():
        own = list(module.parameters(recurse=False))
        if id(module) not in sharded and own and all(
                p.requires_grad and p.is_floating_point() and p.dtype != dtype for p in own):
            found.append(module)
    return found


def setup(spec: dict):
    return Ranks(spec) if spec.get("nproc", 1) > 1 else Single()
