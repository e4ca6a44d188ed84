"""`run_bench.py fit`: the search (pure), bad input (one line, exit 2), and real tiny-llama probes
under --max-memory (the launcher's RLIMIT_DATA path)."""

import json

import pytest

from bench.run.fit import search
from tests.conftest import one_clean_error_line, run_cli

MiB = 2**20


def above_floor(floor: int, extra_mib: int) -> str:
    """A --memory budget EXTRA_MIB above the measured start-up floor (tests.conftest.startup_floor):
    what a probe has for loading and training, the same on a machine whose floor sits elsewhere."""
    return f"{-(-floor // MiB) + extra_mib}MiB"


@pytest.mark.parametrize("edge", [1, 2, 7, 12, 33, 4096])
@pytest.mark.parametrize("start", [1, 9, 12, 40])
def test_the_search_finds_the_edge_from_any_start(edge, start):
    probed = []

    def fits(n):
        probed.append(n)
        return n <= edge

    found = search.largest(probe=fits, start=start, low=1, cap=4096)
    assert found["largest"] == edge and found["capped"] == (edge == 4096)
    assert len(probed) == len(set(probed))  # no point is run twice
    assert found["probes"] == [(n, n <= edge) for n in probed]


def test_a_good_prediction_costs_few_runs():
    """From the predicted edge itself: one run that fits, one that does not (the next size up
    would be 2x; bisection between them), never a walk up from 1."""
    found = search.largest(probe=lambda n: n <= 12, start=12, low=1, cap=4096)
    assert [n for n, _ in found["probes"]][:2] == [12, 24] and len(found["probes"]) <= 5


def test_sequence_lengths_move_on_their_grid():
    found = search.largest(probe=lambda n: n <= 300, start=1000, low=8, cap=2048, step=8)
    assert found["largest"] == 296 and all(n % 8 == 0 for n, _ in found["probes"])
    assert search.largest(probe=lambda n: False, start=64, low=8, cap=2048, step=8)["largest"] == 0


def test_agreement_counts_every_probed_point_once():
    probes = [(8, True), (16, False), (12, True), (14, False)]
    counts = search.agreement(probes, lambda n: n <= 13)
    assert counts == {"predicted fit, measured fit": 2, "predicted fit, measured oom": 0,
                      "predicted oom, measured fit": 0, "predicted oom, measured oom": 2}
    assert sum(search.agreement(probes, lambda n: None).values()) == 0  # no planner: nothing counted


@pytest.mark.parametrize("args, needle", [
    (["--methods", "lora", "sgd"], "unknown method 'sgd' for fit; valid choices: full, lora, qlora, dora, lora8"),
    (["--methods", "base"], "unknown method 'base'"),
    (["--methods", "lora", "--memory", "1MiB"], "is below tiny-llama's weights alone"),
    (["--methods", "lora", "--memory", "lots"], "cannot parse memory size 'lots'"),
    (["--methods", "lora", "--seq-len", "64", "--batch-size", "2"], "not allowed with argument"),
    (["--methods", "lora", "--seq-len", "0"], "--seq-len must be a positive integer"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, needle):
    base = ["fit", "--models", "tiny-llama", "--memory", "1GiB", "--out", tmp_path / "out"]
    result = run_cli(*base, *args)
    assert needle in one_clean_error_line(result)
    assert not (tmp_path / "out" / "results.jsonl").exists()  # rejected before any run


def test_a_budget_under_what_a_run_needs_to_start_is_refused_before_any_run(tmp_path, startup_floor):
    out = tmp_path / "out"
    under = f"{startup_floor // MiB - 16}MiB"  # above tiny-llama's weights, under the floor
    result = run_cli("fit", "--models", "tiny-llama", "--methods", "lora", "--memory", under, "--out", out)
    assert f"--max-memory {under} is below the {-(-startup_floor // MiB)} MiB" in one_clean_error_line(result)
    assert not (out / "results.jsonl").exists()


def test_a_budget_whose_smallest_point_fails_says_so_with_the_measured_peak(tmp_path, startup_floor):
    """Every probe out of memory (stub children, tests.stub_worker): the search walks down to
    batch 1 and stops there, naming the peak measured and the error. The real probes under a
    real budget are test_a_real_search_finds_the_edge_and_records_every_probe's."""
    out, budget = tmp_path / "out", above_floor(startup_floor, 122)
    result = run_cli("fit", "--models", "tiny-llama", "--methods", "lora", "--memory", budget,
                     "--seq-len", "64", "--steps", "1", "--profile", "smoke", "--out", out, stub={"lora": "oom"})
    line = one_clean_error_line(result)
    assert (f"the smallest point (tiny-llama x lora batch 1 @ seq 64) already fails under {budget}: "
            "measured peak") in line
    assert "can't allocate memory" in line
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert {r["status"] for r in records} == {"oom"} and records[-1]["config"]["batch_size"] == 1
    assert [r["config"]["batch_size"] for r in records] == sorted({r["config"]["batch_size"] for r in records},
                                                                   reverse=True)  # halving, no size twice
    assert all(r["config"]["max_memory"] == budget for r in records)



def test_a_sequence_search_that_reaches_the_data_floor_is_a_smallest_point_failure(tmp_path, startup_floor):
    """--batch-size 1, every length out of memory (stub children), and below 88 tokens the data
    itself fails, as the worker's data preparation refuses it: the search ends as 'smallest point
    fails', not a crash."""
    out, budget = tmp_path / "out", above_floor(startup_floor, 322)
    result = run_cli("fit", "--models", "tiny-llama", "--methods", "lora", "--memory", budget, "--batch-size", "1",
                     "--steps", "1", "--profile", "smoke", "--out", out, stub={"lora": "oom,data-floor=88"})
    line = one_clean_error_line(result)
    assert f"already fails under {budget}" in line and "shorter sequences leave the data unsupervised" in line
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records][-1] == "error" and {r["status"] for r in records[:-1]} == {"oom"}
    assert records[-1]["config"]["seq_len"] < 88 <= min(r["config"]["seq_len"] for r in records[:-1])
    assert all(r["config"]["seq_len"] % 8 == 0 for r in records)  # the sequence grid


@pytest.mark.slow
def test_a_real_search_finds_the_edge_and_records_every_probe(tmp_path, startup_floor):
    """546 MiB above the start-up floor (1 GiB when written): some batches fit, some do not."""
    out, budget = tmp_path / "out", above_floor(startup_floor, 546)
    result = run_cli("fit", "--models", "tiny-llama", "--methods", "lora", "--memory", budget,
                     "--seq-len", "64", "--steps", "1", "--profile", "smoke", "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    (row,) = json.loads((out / "fit.json").read_text())
    fits = sorted(r["config"]["batch_size"] for r in records if r["status"] == "ok")
    ooms = sorted(r["config"]["batch_size"] for r in records if r["status"] == "oom")
    assert len(fits) + len(ooms) == len(records) == len(row["probes"])
    assert fits and ooms and max(fits) < min(ooms)  # monotone, and the edge is bracketed
    assert row["measured_largest"] == max(fits) and min(ooms) == max(fits) + 1
    assert sum(row["agreement"].values()) == len(records)
    assert all(r["memory"]["breakdown"] == {"error": "not measured: breakdown is off for this run"}
               for r in records if r["status"] == "ok")
    assert f"largest fit under --max-memory {budget}" in result.stdout and "ETA" in result.stdout


class CudaJob:
    """A fit job whose probes come back as CUDA records: an oom at every size, the device's figures
    small, the host's RSS large (torch, the CUDA libraries and the tokenizer on the host)."""
    model, method, memory, searching = "shape:llama-3.2-1b", "lora", "1GiB", "batch"
    MiB = 2**20

    def run(self, n, *, out_dir):
        return {"run_id": f"r{n}", "status": "oom", "error": "CUDA out of memory for the budget",
                "memory": {"device": "cuda", "process_peak_bytes": 2048 * self.MiB, "baseline_bytes": 1900 * self.MiB,
                           "load": {"peak_bytes": 600 * self.MiB},
                           "train": {"peak_bytes": 900 * self.MiB, "device_peak_bytes": 1400 * self.MiB}}}

    def label(self, n):
        return f"batch {n}"

    def fixed_text(self):
        return "seq 64"

    def predicted_largest(self, **_):
        return None

    def predicted_fits(self, n):
        return None

    def predicted_bytes(self, n):
        return None


def test_a_cuda_probe_reports_and_judges_the_device_peak_not_host_rss(tmp_path, capsys):
    from bench.run.fit import command

    row = command._search(CudaJob(), out_dir=tmp_path, clock=command.Clock(total_jobs=1))
    printed = capsys.readouterr().out
    assert "oom, device peak 1,400 MiB" in printed and "2,048" not in printed
    assert "already fails under 1GiB: measured device peak 1,400 MiB (CUDA out of memory" in row["error"]
    assert command.measured_peak({"memory": {"device": "cuda", "process_peak_bytes": 2**31, "load": {"peak_bytes": 5},
                                             "train": {}}}) == (5, "device peak")  # died in load: torch's reserved
