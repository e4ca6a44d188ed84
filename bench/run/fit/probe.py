"""One (model, method) search of `run_bench.py fit`: its probe runs and the planner's view of them.

A probe is a spec from the profile machinery (same defaults and validation as `run`), with the
searched size set, `max_memory` = the budget, MMLU scoring and the breakdown off, launched in a
child and appended to OUT/results.jsonl. The planner predicts what `--max-memory` bounds: on CPU
the train-phase peak RSS (`total_bytes`), on CUDA the whole device (`device_bytes`: torch's
reserved peak plus context, paged optimizer state and NCCL; the worker checks the same, see
bench.measure.device_budget), the budget `plan --frontier` uses too; with the
precision policy and baseline the first probe's record reports, once there is one, and with the
options the worker passes it for the run's own `estimate`.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from bench.run.profile import defaults
from bench.util.errors import BenchError

# a probe measures memory: every scoring setting this version knows is turned off
NO_SCORING = {k: False for k in ("mmlu", "target") if k in defaults()["eval"]}


@dataclass
class Job:
    model: str
    method: str
    memory: str           # the budget as the user wrote it (each probe's max_memory)
    budget: int           # the same, in bytes
    profile: str
    steps: int
    seq_len: int | None = None     # fixed: search the batch
    batch_size: int | None = None  # fixed: search the sequence length
    _template: dict = field(default=None, repr=False)
    _measured: dict = field(default_factory=dict, repr=False)  # weights dtype and baseline from a record

    @property
    def searching(self) -> str:
        return "seq_len" if self.batch_size is not None else "batch"

    def spec(self, n: int) -> dict:
        """The probe's spec at size n (hashes recomputed: `breakdown` is part of the work)."""
        from bench.run.matrix import build_matrix, finish_spec
        from bench.run.profile import load_profile

        size = {"batch_size": n, "seq_len": self.fixed()} if self.searching == "batch" else \
            {"batch_size": self.fixed(), "seq_len": n}
        warmup = min(2, self.steps - 1)
        settings = load_profile(self.profile, overrides={
            "run": {"models": [self.model], "methods": [self.method], "steps": self.steps, "warmup_steps": warmup,
                    "max_memory": self.memory, **size},
            "eval": NO_SCORING})
        spec = build_matrix(settings)[0]
        return finish_spec(dict(spec, breakdown=False))

    def fixed(self) -> int:
        if self.searching == "batch":
            return self.seq_len or self.template()["seq_len"]
        return self.batch_size

    def fixed_text(self) -> str:
        return f"seq {self.fixed()}" if self.searching == "batch" else f"batch {self.fixed()}"

    def label(self, n: int) -> str:
        what = f"batch {n} @ seq {self.fixed()}" if self.searching == "batch" else f"seq {n} @ batch {self.fixed()}"
        return f"{self.model} x {self.method} {what}"

    def template(self) -> dict:
        """The profile's spec for this model and method, before the searched size is set."""
        if self._template is None:
            from bench.run.matrix import build_matrix
            from bench.run.profile import load_profile

            settings = load_profile(self.profile, overrides={"run": {"models": [self.model], "methods": [self.method]}})
            self._template = build_matrix(settings)[0]
        return self._template

    def run(self, n: int, *, out_dir: Path) -> dict:
        from bench.results import store
        from bench.run.launcher import launch
        from bench.run.matrix import run_id

        spec = self.spec(n)
        spec["run_id"] = run_id(spec)
        record = launch(spec, out_dir=out_dir, echo=lambda line: None)
        record["executor"] = "local"
        store.append(out_dir, record)
        precision = record.get("precision") or {}
        if precision.get("policy"):
            self._measured = {"policy": precision["policy"], "baseline_bytes": record["memory"].get("baseline_bytes"),
                              "device": record["memory"].get("device")}
        return record

    # -- the planner's view ------------------------------------------------------------------
    def config(self) -> dict:
        return json.loads((Path(self.template()["model_path"]) / "config.json").read_text())

    def device(self) -> str:
        if self._measured.get("device"):
            return self._measured["device"]
        requested = self.template()["device"]
        if requested != "auto":
            return requested
        from bench.run.hardware import cuda_devices

        return "cuda" if cuda_devices() else "cpu"

    def options(self) -> dict:
        """The planner's options for this run, as the worker passes them (bench.plan.for_run):
        the policy and baseline the first probe reported, once there is a record."""
        from bench.plan.options import from_run

        options = from_run(self.template(), policy=self._measured.get("policy"), device=self.device(),
                           baseline_bytes=self._measured.get("baseline_bytes"))
        return {k: v for k, v in options.items() if k not in ("seq_len", "batch_size")}  # the search sets them

    def estimate(self, n: int) -> dict:
        from bench.plan import estimate

        batch, seq = (n, self.fixed()) if self.searching == "batch" else (self.fixed(), n)
        from bench.plan.predict import without_retention

        predicted = estimate(config=self.config(), method=self.method, seq_len=seq, batch_size=batch, **self.options())
        return without_retention(predicted, device=self.device(),
                                 mmap_threshold=self.template().get("cpu_malloc_mmap_threshold"))

    def predicted_bytes(self, n: int):
        """What the planner says the budget must hold at size n (CPU: peak RSS; CUDA: the whole
        device, as `plan --frontier`); None where it cannot predict this model or method."""
        try:
            est = self.estimate(n)
        except (BenchError, KeyError, TypeError, ValueError):
            return None
        return est["device_bytes"] if self.device() == "cuda" else est["total_bytes"]

    def predicted_fits(self, n: int):
        """True/False by the planner at size n; None without a prediction."""
        predicted = self.predicted_bytes(n)
        return None if predicted is None else predicted <= self.budget

    def predicted_largest(self, *, low: int, cap: int, step: int):
        from bench.run.fit.search import largest

        if self.predicted_fits(low) is None:
            return None
        return largest(probe=self.predicted_fits, start=low, low=low, cap=cap, step=step)["largest"]

    def check_weights(self) -> None:
        """Bad input: a budget below the weights alone (the planner's own check, as plan --frontier)."""
        from bench.plan.frontier import check_weights_fit

        options = {k: v for k, v in self.options().items() if k != "baseline_bytes"}
        check_weights_fit(label=self.model, config=self.config(), methods=[self.method], memory_bytes=self.budget,
                          options=options)

    def max_seq(self) -> int:
        return int(self.config().get("max_position_embeddings") or 8192)
