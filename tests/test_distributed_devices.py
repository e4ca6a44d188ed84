"""The device rule for collectives (bench.training.distributed.collective_device), on this CPU.

gloo takes CPU tensors, so the 2-rank CPU runs cannot see a CPU tensor handed to a collective;
NCCL can (it has no CPU backend). A group created as "cuda:gloo" serves no CPU either, and this
CPU build of torch creates it: every collective call site of the harness runs on it here, on
two torchrun ranks, and none may fail the way a CPU tensor on NCCL fails. Without CUDA the
tensors the rule puts on the rank's GPU cannot be made, so there a call site passes when it
stopped at "no CUDA in this torch" (the tensor went to the served device), and on a CUDA
machine the same test runs the collectives through.
"""

import json
import subprocess

import pytest

CPU_TENSOR_ON_A_CPULESS_GROUP = "No backend type associated with device type cpu"

CALL_SITES = """
import json, os, sys
import torch
from bench.training import distributed, fsdp_load, methods

backend = sys.argv[1]
ranks = distributed.Ranks({"strategy": "fsdp", "device": "cpu", "run_timeout_s": 120}, backend=backend)
memory = {"worker_peak_bytes": 1, **{p: {"peak_bytes": ranks.rank + 1} for p in ("load", "train", "eval")}}

def stand_in(spec):  # a model with a parameter and a non-persistent buffer, built where the spec says
    with torch.device(spec["device"]):
        model = torch.nn.Linear(2, 2)
        model.register_buffer("scale", torch.full((2,), 3.0), persistent=False)
    return model

methods.build = stand_in

def loaded():
    model, full = fsdp_load.build({"device": "cpu"}, rank=ranks.rank)
    fsdp_load.distribute(model, full, rank=ranks.rank)
    return [float(model.scale[0])]

calls = {"reduce": lambda: list(ranks.reduce(1.5, 3)),
         "finish": lambda: (ranks.finish(record := {"host": "h", "memory": memory})
                            or record.get("distributed", {}).get("ranks") and len(record["distributed"]["ranks"])),
         "fsdp_load": loaded}
out = {"device": str(distributed.collective_device(index=ranks.local_rank)),
       "served": distributed.served_device_types()}
for name, call in calls.items():
    try:
        out[name] = call()
    except Exception as exc:
        out[name] = f"{type(exc).__name__}: {exc}"
os.write(1, (f"rank {ranks.rank} " + json.dumps(out) + "\\n").encode())
"""


def _run(tmp_path, source: str, *args) -> dict:
    """{rank: the JSON line it printed} from `source` run on two torchrun ranks with `args`."""
    from bench.run.launcher import child_env, worker_command

    script = tmp_path / "ranks.py"
    script.write_text(source)
    spec = {"nproc": 2, "device": "cpu"}
    cmd = worker_command(spec, tmp_path / "spec.json")
    done = subprocess.run([*cmd[:-3], str(script), *args], env=child_env(spec), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line.split(" ", 2) for line in done.stdout.splitlines() if line.startswith("rank ")]
    return {int(rank): json.loads(out) for _, rank, out in lines}


def test_a_gloo_group_gets_cpu_tensors_and_every_call_site_runs(tmp_path):
    ranks = _run(tmp_path, CALL_SITES, "gloo")
    assert sorted(ranks) == [0, 1]
    for rank, out in ranks.items():
        assert out["device"] == "cpu" and "cpu" in out["served"]
        assert out["reduce"] == [3.0, 6], out  # both ranks' (1.5, 3) added
        assert out["fsdp_load"] == [3.0], out  # rank 1's buffer came from rank 0
    assert ranks[0]["finish"] == 2  # rank 0 gathered both ranks' figures


def test_a_group_that_serves_no_cpu_gets_no_cpu_tensor_from_any_call_site(tmp_path):
    import torch

    ranks = _run(tmp_path, CALL_SITES, "cuda:gloo")
    assert sorted(ranks) == [0, 1]
    for rank, out in ranks.items():
        assert out["served"] == ["cuda"] and out["device"] == f"cuda:{rank}"  # torchrun's LOCAL_RANK
        for site in ("reduce", "finish", "fsdp_load"):
            result = str(out[site])
            assert CPU_TENSOR_ON_A_CPULESS_GROUP not in result, (site, result)
            if not torch.cuda.is_available():  # the served device was asked for, and this torch has none
                assert "not compiled with CUDA" in result, (site, result)


ADAPTER_DTYPES = """
import json, os, sys
import torch
from bench.training import distributed

spec = {"strategy": "fsdp", "device": "cpu", "run_timeout_s": 120, "method": sys.argv[2], "model": "tiny-llama",
        "model_path": sys.argv[1], "weights_dtype": "bfloat16", "compute_dtype": "bfloat16",
        "trust_remote_code": False, "grad_checkpointing": False, "lora_r": 4, "lora_alpha": 8,
        "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
ranks = distributed.Ranks(spec)
model = ranks.wrap(ranks.build(spec), spec)
seen = {}
for name, module in model.named_modules():
    if name.endswith(("lora_A.default", "lora_B.default", "q_proj.base_layer")):
        kind = name.rsplit(".", 2)[-2] if "lora" in name else "base"
        module.register_forward_hook(lambda m, i, o, kind=kind: seen.setdefault(kind, set()).add(str(m.weight.dtype)))
ids = torch.tensor([[1, 5, 9, 13, 17, 21]])
model(input_ids=ids, labels=ids).loss.backward()
grads = {str(p.grad.dtype) for n, p in model.named_parameters() if "lora_" in n}
stored = {str(p.dtype) for n, p in model.named_parameters() if "lora_" in n}
out = {k: sorted(v) for k, v in seen.items()}
out.update(grad=sorted(grads), stored=sorted(stored))
os.write(1, (f"rank {ranks.rank} " + json.dumps(out) + "\\n").encode())
"""


@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_fsdp_under_bf16_true_keeps_the_lora_weights_in_float32(tmp_path, tiny_path, method):
    """docs/precision.md: adapters are fp32 under every policy. FSDP casts a unit's parameters to
    its param_dtype for forward; two ranks on gloo, bf16 weights (QLoRA's packed storage bf16 too):
    the base is bf16, the adapter weights reach their forward, and keep their gradients, in float32."""
    ranks = _run(tmp_path, ADAPTER_DTYPES, str(tiny_path), method)
    assert sorted(ranks) == [0, 1]
    for out in ranks.values():
        assert out["base"] == ["torch.bfloat16"], out
        assert out["lora_A"] == out["lora_B"] == ["torch.float32"], out
        assert out["stored"] == out["grad"] == ["torch.float32"], out
