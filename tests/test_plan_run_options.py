"""One run, one set of planner options: the worker's own estimate (bench.plan.for_run), the report
(bench.results.report.scale), the calibration (bench.plan.calibration), `fit`'s probes (bench.run.fit.probe)
and the driver's budget check (bench.run.budget) all price a run through bench.plan.options.from_run,
so the worker's estimate and the report's are the same figure for the same record."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.plan import for_run as worker_estimate
from bench.plan import calibration, presets
from bench.results.report import scale
from bench.run import budget
from bench.run.fit.probe import Job

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = [  # committed CPU records the worker estimated: a real model unpacked, a shape model packed
    ("reports/samples/cpu-seeds/results.jsonl", "smollm2-135m"),
    ("reports/samples/plan-qlora-check/results.jsonl", "llama-3.2-1b"),
]


def _records(path):
    for line in (ROOT / path).read_text().splitlines():
        r = json.loads(line)
        if r.get("status") == "ok" and r.get("method") != "base" and r.get("estimate") and "error" not in r["estimate"]:
            yield r


def _worker_spec(record: dict, model_dir: Path) -> dict:
    """The spec as the worker holds it when it estimates: device and precision resolved."""
    return dict(record["config"], model_path=str(model_dir), device=record["memory"]["device"],
                precision=record["precision"]["policy"])


def _model_dir(tmp_path: Path, preset: str) -> tuple:
    config = presets.load(preset)[1]
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path, config


@pytest.mark.parametrize("mmap", [0, 65536], ids=["allocator-kept", "allocator-dropped"])
@pytest.mark.parametrize("path,preset", SAMPLES)
def test_worker_and_report_estimate_the_same(tmp_path, path, preset, mmap):
    model_dir, config = _model_dir(tmp_path, preset)
    records = list(_records(path))
    assert records
    for record in records:
        record = dict(record, config=dict(record["config"], cpu_malloc_mmap_threshold=mmap))
        policy = SimpleNamespace(name=record["precision"]["policy"])
        worker = worker_estimate.estimate(_worker_spec(record, model_dir), record, policy)
        report = scale.plan(record, config=config, method=record["method"])
        for key in ("measured_bytes", "error_pct"):
            worker.pop(key)
        assert worker == report
        assert ("allocator" in report["terms"]) == (mmap == 0)


class _Captured(Exception):
    pass


def _capture(monkeypatch) -> list:
    """Replace bench.plan.estimate by one that records the options it is given and stops."""
    seen = []

    def fake(*, config, method, **options):
        seen.append(options)
        raise _Captured

    monkeypatch.setattr("bench.plan.estimate", fake)
    return seen


def test_every_caller_prices_a_packed_run_alike(tmp_path, monkeypatch):
    """A packed CPU run: each caller hands the planner the same options (calibration once left
    `packing` out)."""
    model_dir, config = _model_dir(tmp_path, "llama-3.2-1b")
    record = next(_records("reports/samples/plan-qlora-check/results.jsonl"))
    record = dict(record, config=dict(record["config"], device="cpu"))  # calibration keeps CPU-configured runs
    assert record["config"]["packing"] is True
    spec = _worker_spec(record, model_dir)
    seen = _capture(monkeypatch)

    for call in (lambda: worker_estimate.estimate(spec, record, SimpleNamespace(name=spec["precision"])),
                 lambda: scale.plan(record, config=config, method=record["method"])):
        with pytest.raises(_Captured):
            call()
    (tmp_path / "results.jsonl").write_text(json.dumps(record) + "\n")
    rows = calibration.load(tmp_path / "results.jsonl")
    seen.append({k: v for k, v in rows[0]["kwargs"].items() if k != "method"})
    job = Job(model=record["model"], method=record["method"], memory="64GB", budget=64 * 10**9, profile="x",
              steps=3, _template=dict(record["config"], model_path=str(model_dir)),
              _measured={"policy": record["precision"]["policy"], "device": "cpu",
                         "baseline_bytes": record["memory"]["baseline_bytes"]})
    with pytest.raises(_Captured):
        job.estimate(record["config"]["batch_size"])
    worker = seen[0]
    assert all(options == worker for options in seen), [set(o.items()) ^ set(worker.items()) for o in seen]
    assert len(seen) == 4


def test_budget_check_prices_the_spec_as_the_worker_would_before_it_ran(tmp_path, monkeypatch):
    model_dir, _ = _model_dir(tmp_path, "llama-3.2-1b")
    record = next(_records("reports/samples/plan-qlora-check/results.jsonl"))
    spec = _worker_spec(record, model_dir)
    seen = _capture(monkeypatch)
    for call in (lambda: budget.planner_floor(spec, device="cpu"),
                 lambda: worker_estimate.estimate(spec, record, SimpleNamespace(name=spec["precision"]))):
        with pytest.raises(_Captured):
            call()
    assert seen[0] == dict(seen[1], baseline_bytes=None)
