"""Two processes on this CPU (torchrun, gloo) train tiny-llama: the record carries both ranks,
and the loss is the single-process loss on the same global batch (same seed), within LOSS_RTOL.
The single-process runs are the session's smoke run (tests.conftest.smoke_run), trained with
the same settings (SMOKE_TRAINING); under DDP rank 0 also evaluates the trained model.

Why not equal to the last bit: each rank sums its share of the tokens and gloo adds the two
sums, where one process adds all tokens in one reduction; and each rank runs 1 thread, so
matmul accumulation order differs too. Float32 rounding moves the loss in the 6th digit.
"""

import pytest

from bench.results import store
from bench.results.schema import problems
from tests.conftest import SMOKE_TRAINING, run_cli

# seq_len 64 pads most sequences (ARC-Easy's p95 is 61 tokens), so the two ranks hold different
# real-token counts: the global-count weighting is exercised, not only an even split.
TINY = [*SMOKE_TRAINING, "--no-eval", "--no-report", "--methods", "full"]
EVAL = ["--target-limit", "4", "--mmlu-limit", "1"]  # as the smoke run scores
LOSS_RTOL = 1e-4


def losses(out, *args, evaluate=False) -> list:
    base = [a for a in TINY if a != "--no-eval"] if evaluate else TINY
    result = run_cli(*base, *args, "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    records, bad = store.read(out)
    assert bad == [] and all(problems(r) == [] for r in records)
    return records


@pytest.fixture(scope="module")
def single(smoke_run):
    record = smoke_run.records["full"]
    assert "distributed" not in record and "nproc" not in record["config"]
    return record


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_ranks_train_the_single_process_loss(tmp_path, single, strategy):
    scoring = EVAL if strategy == "ddp" else []  # DDP: rank 0 scores the whole replica
    (record,) = losses(tmp_path, "--nproc", "2", "--strategy", strategy, *scoring, evaluate=bool(scoring))
    dist = record["distributed"]
    assert dist["world_size"] == 2 and dist["backend"] == "gloo" and dist["strategy"] == strategy
    assert [r["rank"] for r in dist["ranks"]] == [0, 1]
    for phase in ("load", "train", "eval"):
        per_rank = [r["memory"][phase]["peak_bytes"] for r in dist["ranks"]]
        assert all(p > 0 for p in per_rank) and record["memory"][phase]["peak_bytes"] == max(per_rank)
    assert record["config"]["nproc"] == 2 and record["spec_hash"] != single["spec_hash"]
    assert record["compare_key"] != single["compare_key"]
    # the same global batch: the same real tokens per step, and the same loss
    assert record["throughput"]["tokens_per_step"] == single["throughput"]["tokens_per_step"]
    assert record["loss"] == pytest.approx(single["loss"], rel=LOSS_RTOL)
    assert record["params"] == single["params"]
    assert dist["loading"] == ("rank 0, broadcast" if strategy == "fsdp" else "every rank")
    if strategy == "ddp":  # rank 0 evaluated the trained replica: the single process's model, within rounding
        assert (record["heldout"]["n"] == 8
                and record["heldout"]["loss"] == pytest.approx(single["heldout"]["loss"], rel=1e-3))
        assert record["tasks"]["ftbench_arc_easy"]["n"] == 4 and record["mmlu"]["n"] == 57
        scored = (tmp_path / record["mmlu"]["predictions_file"]).read_text().splitlines()
        assert len(scored) == 57  # one prediction line per question, written once (by rank 0)
    else:
        assert record["heldout"] is None and record["mmlu"] is None and "fsdp" in dist["eval_skipped"]


def load_peaks(out, *args) -> dict:
    (record,) = losses(out, *args)
    return record


@pytest.mark.slow
def test_fsdp_reads_the_checkpoint_on_rank_0_only_and_the_other_rank_peaks_lower(tmp_path):
    """smollm2-135m (538 MB of float32 weights): one process reads the checkpoint and builds the
    model, so its load peak holds both; under FSDP rank 1 builds on the meta device and receives
    its half, so its load peak must sit below the single-process one by at least a quarter of
    the weights (the measured gap is larger; docs/scale.md)."""
    # seq-len 64: the data check passes
    args = ("--models", "smollm2-135m", "--methods", "lora", "--seq-len", "64", "--batch-size", "2")
    single = load_peaks(tmp_path / "one", *args)
    sharded = load_peaks(tmp_path / "two", *args, "--nproc", "2", "--strategy", "fsdp")
    assert sharded["distributed"]["loading"] == "rank 0, broadcast"
    weights = 4 * 134_515_008
    one = single["memory"]["load"]["peak_bytes"]
    rank0, rank1 = (r["memory"]["load"]["peak_bytes"] for r in sharded["distributed"]["ranks"])
    assert rank1 < one - weights / 4, (one, rank0, rank1)
    assert rank1 < rank0 - weights / 4, (one, rank0, rank1)
    assert sharded["loss"][0] == pytest.approx(single["loss"][0], rel=LOSS_RTOL)  # the same weights reached rank 1


def test_fsdp_qlora_loads_on_rank_0_and_trains_the_single_process_loss(tmp_path, smoke_run):
    """The 4-bit path: rank 1 builds the quantised structure on meta and takes rank 0's packed
    weights and quantisation state. A wrong absmax or packing would change the first loss."""
    single = smoke_run.records["qlora"]
    (sharded,) = losses(tmp_path, "--methods", "qlora", "--nproc", "2", "--strategy", "fsdp")
    assert sharded["distributed"]["loading"] == "rank 0, broadcast"
    # dropout draws differ per rank: not bit-equal
    assert sharded["loss"] == pytest.approx(single["loss"], rel=LOSS_RTOL)
    assert sharded["params"] == single["params"]


RANK_ENV = """
import os, torch, torch.distributed as dist
dist.init_process_group("gloo")
t = torch.ones(1)
dist.all_reduce(t)
line = (f"rank {os.environ['RANK']}: MASTER_ADDR={os.environ['MASTER_ADDR']} "
        f"GLOO_SOCKET_IFNAME={os.environ.get('GLOO_SOCKET_IFNAME')} sum={int(t.item())}\\n")
os.write(1, line.encode())  # one write per line: the two ranks share the pipe, print() may interleave them
dist.destroy_process_group()
"""


def test_torchrun_ranks_meet_and_reduce_on_the_loopback(tmp_path):
    """The launcher's torchrun command and environment for a 2-rank CPU run: both ranks see
    MASTER_ADDR 127.0.0.1 and gloo on the loopback interface, and an all-reduce goes through."""
    import subprocess

    from bench.run.launcher import child_env, loopback_interface, worker_command

    script = tmp_path / "ranks.py"
    script.write_text(RANK_ENV)
    spec = {"nproc": 2, "device": "cpu"}
    cmd = worker_command(spec, tmp_path / "spec.json")
    assert cmd[-3:-1] == ["-m", "bench.run.worker"]
    done = subprocess.run([*cmd[:-3], str(script)], env=child_env(spec), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = sorted(line for line in done.stdout.splitlines() if line.startswith("rank "))
    want = f"MASTER_ADDR=127.0.0.1 GLOO_SOCKET_IFNAME={loopback_interface()} sum=2"
    assert lines == [f"rank 0: {want}", f"rank 1: {want}"], done.stdout + done.stderr
