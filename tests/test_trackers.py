"""--log-to mlflow|tensorboard: a real smoke run logged to both, read back and compared with its records;
a tracker that is unknown or not installed is one line before any run starts."""

import pytest

from bench import cli
from bench.results import store, trackers

V1, V2 = "tests/fixtures/results_synthetic.jsonl", "tests/fixtures/results_v2.jsonl"


def test_figures_leave_out_what_was_not_measured():
    v1 = {r["method"]: r for r in store.read(V1)[0]}
    assert ("heldout.loss" not in trackers.figures(v1["full"])
            and "throughput.tokens_per_s" not in trackers.figures(v1["base"]))
    assert trackers.figures(v1["full"])["memory.train.peak_bytes"] == 2.9e9
    assert trackers.figures(v1["dora"]) == {"wall_s": 60.0}  # oom: nothing else was measured
    v2 = store.read(V2)[0][1]
    shown = trackers.figures(v2)
    assert (shown["heldout.loss"] == v2["heldout"]["loss"]
            and shown["tasks.ftbench_arc_easy.acc"] == v2["tasks"]["ftbench_arc_easy"]["acc"])
    assert shown["mmlu.categories.stem"] == v2["mmlu"]["categories"]["stem"]
    assert trackers.steps(v2) == {"train/loss": v2["loss"], "train/step_time_s": v2["throughput"]["step_times_s"]}


@pytest.mark.parametrize("name, message", [
    ("wandb", "unknown tracker 'wandb'; valid choices: mlflow, tensorboard"),
    ("mlflow", "--log-to mlflow needs the mlflow package, which is not installed; install the trackers extra: "
               "pip install -e .[trackers]"),
])
def test_bad_tracker_is_one_line_before_any_run(tmp_path, monkeypatch, capsys, name, message):
    monkeypatch.setattr(cli, "COMMANDS", {"run": "bench.run.command"})
    monkeypatch.setattr(trackers.importlib.util, "find_spec", lambda module: None)  # as if the extra were absent
    code = cli.main(["run", "--profile", "smoke", "--out", str(tmp_path / "out"), "--log-to", name])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err == f"ftbench: error: {message}\n"
    assert not (tmp_path / "out").exists()


def test_a_real_smoke_run_is_logged_to_both(smoke_run):
    """The session's smoke run (conftest) logged each of its runs to mlflow and tensorboard."""
    if not smoke_run.trackers:
        pytest.skip("the trackers extra is not installed (pip install -e .[trackers])")
    out, record = smoke_run.out, smoke_run.records["lora"]
    assert f"logged to mlflow: sqlite:///{out.resolve() / 'mlflow.db'}" in smoke_run.stdout
    assert len(record["loss"]) == 3 and len(record["throughput"]["step_times_s"]) == 3

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("ftbench").experiment_id])
    assert sorted(r.info.run_name for r in runs) == sorted(r["run_id"] for r in smoke_run.records.values())
    (run,) = [r for r in runs if r.info.run_name == record["run_id"]]
    assert run.info.run_name == record["run_id"] and run.info.status == "FINISHED"
    assert run.data.tags["method"] == "lora" and run.data.params["seq_len"] == str(record["config"]["seq_len"])
    assert [m.value for m in client.get_metric_history(run.info.run_id, "train/loss")] == record["loss"]
    history = client.get_metric_history(run.info.run_id, "train/step_time_s")
    assert [(m.step, m.value) for m in history] == list(enumerate(record["throughput"]["step_times_s"], start=1))
    assert run.data.metrics == pytest.approx({**trackers.figures(record), "train/loss": record["loss"][-1],
                                              "train/step_time_s": record["throughput"]["step_times_s"][-1]})

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard" / record["run_id"]), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx(record["loss"], rel=1e-6)  # float32
    assert [e.step for e in events.Scalars("train/step_time_s")] == [1, 2, 3]
    assert events.Scalars("final/memory.train.peak_bytes")[0].value == pytest.approx(
        record["memory"]["train"]["peak_bytes"], rel=1e-6)
    config = events.Tensors("config")[0].tensor_proto.string_val[0].decode()
    assert f"| seq_len | {record['config']['seq_len']} |" in config
