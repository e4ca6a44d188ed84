"""Optional experiment trackers: `run_bench.py run --log-to mlflow|tensorboard`.

Each finished run's record is logged from the parent, after the run, so the worker (and what
it measures) is untouched: the run's config as parameters, per-step training loss and step
time, and the final figures (memory per phase, throughput, MMLU overall and per category,
task accuracy, held-out loss, parameter counts). Neither tracker imports torch.

- mlflow: one MLflow run per record, in experiment `ftbench`, in a local SQLite store
  `sqlite:///OUT/mlflow.db` unless MLFLOW_TRACKING_URI says otherwise. Offline, nothing to
  start; `mlflow ui --backend-store-uri sqlite:///OUT/mlflow.db` shows it.
- tensorboard: event files under OUT/tensorboard/<run_id>/ (scalars, and the config as a text
  table); `tensorboard --logdir OUT/tensorboard` shows them.

The packages are the `trackers` extra; without it, asking for a tracker is one error line
naming `pip install -e .[trackers]` before any run starts.
"""

import importlib.util
import os
import time
from pathlib import Path

from bench.util.errors import BenchError, choices_error

TRACKERS = {"mlflow": "mlflow", "tensorboard": "tensorboard"}  # name -> module it needs
EXPERIMENT = "ftbench"


def check(name: str) -> None:
    """BenchError for an unknown tracker or one whose package is not installed."""
    if name not in TRACKERS:
        raise choices_error("tracker", name, TRACKERS)
    if importlib.util.find_spec(TRACKERS[name]) is None:
        raise BenchError(f"--log-to {name} needs the {TRACKERS[name]} package, which is not installed; "
                         f"install the trackers extra: pip install -e .[trackers]")


def _flat(mapping, prefix="") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    import pandas as pd

    if not mapping:
        return {}
    return {prefix + k: v for k, v in pd.json_normalize(mapping, sep=".").iloc[0].to_dict().items()}


def figures(record: dict) -> dict:
    """The final figures of a record as {name: number}; what was not measured is left out."""
    picked = {f"memory.{p}.peak_bytes": ((record.get("memory") or {}).get(p) or {}).get("peak_bytes")
              for p in ("load", "train", "eval")}
    throughput, mmlu = record.get("throughput") or {}, record.get("mmlu") or {}
    picked.update({"memory.process_peak_bytes": (record.get("memory") or {}).get("process_peak_bytes"),
                   "throughput.tokens_per_s": throughput.get("tokens_per_s"),
                   "throughput.step_time_s.p50": (throughput.get("step_time_s") or {}).get("p50"),
                   "mmlu.acc": mmlu.get("acc"), "mmlu.stderr": mmlu.get("stderr"),
                   "heldout.loss": (record.get("heldout") or {}).get("loss"),
                   "params.trainable": (record.get("params") or {}).get("trainable"),
                   "params.total": (record.get("params") or {}).get("total"), "wall_s": record.get("wall_s")})
    picked.update({f"mmlu.categories.{k}": v for k, v in (mmlu.get("categories") or {}).items()})
    for task, block in (record.get("tasks") or {}).items():
        picked.update({f"tasks.{task}.{k}": (block or {}).get(k) for k in ("acc", "acc_norm")})
    return {k: float(v) for k, v in picked.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def steps(record: dict) -> dict:
    """Per-step series: {"train/loss": [...], "train/step_time_s": [...]}, step 1 first."""
    return {"train/loss": list(record.get("loss") or []),
            "train/step_time_s": list((record.get("throughput") or {}).get("step_times_s") or [])}


class MLflowTracker:
    def __init__(self, out_dir: Path):
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # offline: nothing leaves the machine
        os.environ.setdefault("DO_NOT_TRACK", "true")
        from mlflow.tracking import MlflowClient

        self.uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(out_dir).resolve() / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=self.uri)
        found = self.client.get_experiment_by_name(EXPERIMENT)
        self.experiment = found.experiment_id if found else self.client.create_experiment(EXPERIMENT)

    def log(self, record: dict) -> str:
        from mlflow.entities import Metric, Param

        tags = {k: str(record.get(k)) for k in ("model", "method", "status", "spec_hash", "run_id", "seed")}
        if record.get("error"):
            tags["error"] = str(record["error"])[:5000]
        run = self.client.create_run(self.experiment, run_name=record.get("run_id"), tags=tags)
        rid, now = run.info.run_id, int(time.time() * 1000)
        params = [Param(k, str(v)[:6000]) for k, v in _flat(record.get("config") or {}).items()]
        metrics = [Metric(k, v, now, 0) for k, v in figures(record).items()]
        metrics += [Metric(name, float(v), now, step) for name, series in steps(record).items()
                    for step, v in enumerate(series, start=1)]
        for i in range(0, max(len(params), len(metrics)), 100):  # MLflow's per-batch limits
            self.client.log_batch(rid, metrics=metrics[i:i + 100], params=params[i:i + 100])
        self.client.set_terminated(rid, status="FINISHED" if record.get("status") == "ok" else "FAILED")
        return rid

    def where(self) -> str:
        return f"mlflow: {self.uri} (mlflow ui --backend-store-uri {self.uri})"


class TensorBoardTracker:
    def __init__(self, out_dir: Path):
        self.root = Path(out_dir) / "tensorboard"

    def log(self, record: dict) -> str:
        from tensorboard.compat.proto import types_pb2
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        run_dir = self.root / str(record.get("run_id"))
        writer, now = EventFileWriter(str(run_dir)), time.time()

        def scalar(tag, value, step):
            writer.add_event(Event(wall_time=now, step=step, summary=Summary(value=[
                Summary.Value(tag=tag, simple_value=float(value))])))

        for name, series in steps(record).items():
            for step, value in enumerate(series, start=1):
                scalar(name, value, step)
        for name, value in figures(record).items():
            scalar(f"final/{name}", value, 0)
        rows = ["| key | value |", "|---|---|"] + [f"| {k} | {v} |"
                                                    for k, v in _flat(record.get("config") or {}).items()]
        text = TensorProto(dtype=types_pb2.DT_STRING, string_val=["\n".join(rows).encode()],
                           tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
        meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="text"))
        writer.add_event(Event(wall_time=now, step=0, summary=Summary(value=[
            Summary.Value(tag="config", metadata=meta, tensor=text)])))
        writer.close()
        return str(run_dir)

    def where(self) -> str:
        return f"tensorboard: {self.root} (tensorboard --logdir {self.root})"


def open_tracker(name: str, *, out_dir: Path):
    """A tracker with .log(record) and .where(); check(name) first."""
    check(name)
    return MLflowTracker(out_dir) if name == "mlflow" else TensorBoardTracker(out_dir)
