"""scripts/gpu_check_summary.py on synthetic CUDA records: the comparisons and the verdict line
are exercised here, on CPU, because the GPU run cannot be (no GPU in CI)."""

import json
import subprocess
import sys

from tests.conftest import ROOT

MiB = 2**20
JUNIT = """<testsuites><testsuite name="pytest">
<testcase classname="tests.test_gpu" name="test_a"/>
<testcase classname="tests.test_gpu" name="test_b"><skipped message="needs sm80"/></testcase>
{extra}</testsuite></testsuites>"""


def record(method, *, nvml_extra=0, predicted=1000 * MiB):
    def phase():
        return {"reserved_peak_bytes": 900 * MiB, "reserved_end_bytes": 800 * MiB, "peak_bytes": 900 * MiB,
                "nvml_process_bytes": 800 * MiB + 500 * MiB + nvml_extra, "nvml_used_bytes": 2000 * MiB}

    return {"run_id": f"r-{method}", "model": "tiny-llama", "method": method, "status": "ok", "error": None,
            "memory": {"cuda_context_bytes": 500 * MiB, "load": phase(), "train": phase(), "eval": phase()},
            "estimate": {"total_bytes": predicted, "measured_bytes": 900 * MiB,
                         "error_pct": 100 * (predicted - 900 * MiB) / (900 * MiB)}}


def summarise(tmp_path, records, *, failed_test=False, code=0, name="smoke", extra=()):
    (tmp_path / "gpu-tests.xml").write_text(JUNIT.format(
        extra='<testcase classname="t" name="c"><failure message="boom"/></testcase>' if failed_test else ""))
    for profile, rows in [(name, records), *extra]:
        (tmp_path / profile).mkdir(exist_ok=True)
        (tmp_path / profile / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    flags = [f"--profile={name}={code}"] + [f"--profile={p}=1" for p, _ in extra]
    done = subprocess.run([sys.executable, str(ROOT / "scripts/gpu_check_summary.py"), str(tmp_path),
                           "--gpu", "Fake H200", *flags], capture_output=True, text=True)
    return done.returncode, done.stdout.strip().splitlines()[-1], json.loads((tmp_path / "summary.json").read_text())


def test_agreement_per_phase_and_planner_error_per_method(tmp_path):
    code, line, summary = summarise(tmp_path, [record("lora"), record("full", predicted=1500 * MiB)])
    assert code == 0 and line.startswith("gpu-check: PASS (GPU Fake H200; tests 1 passed, 0 failed, 1 skipped")
    assert ("smoke 2/2 ok" in line and "NVML = reserved + context in 6/6 phases" in line
            and "planner within ±25% for 1/2 runs" in line)
    row = summary["memory"][0]
    assert row["outside_torch_bytes"] == 500 * MiB and row["agree"] is True
    assert [round(r["error_pct"]) for r in summary["planner"]] == [11, 67]


def test_disagreement_a_failed_run_or_test_fails_the_check(tmp_path):
    code, line, _ = summarise(tmp_path, [record("lora", nvml_extra=2048 * MiB)])
    assert code == 1 and "NVML disagrees" in line
    code, line, _ = summarise(tmp_path, [dict(record("lora"), status="oom", error="CUDA out of memory")], code=1)
    assert code == 1 and "profile smoke (exit 1, 0/1 ok)" in line
    flagged = record("lora")
    flagged["throughput"] = {"mfu": 1.3, "mfu_flag": "model FLOPs at 130.0% of the measured matmul peak"}
    code, line, summary = summarise(tmp_path, [flagged])
    assert code == 1 and "MFU flagged in 1 run(s): model FLOPs at 130.0%" in line and summary["mfu"][0]["mfu"] == 1.3
    code, line, _ = summarise(tmp_path, [record("lora")], failed_test=True)
    assert code == 1 and "1 test(s) failed" in line


def test_a_missing_nvml_figure_is_reported_as_unavailable_not_as_agreement(tmp_path):
    blind = record("lora")
    for phase in ("load", "train", "eval"):
        blind["memory"][phase]["nvml_process_bytes"] = None
    code, line, summary = summarise(tmp_path, [blind])
    assert code == 0 and "NVML process figure unavailable" in line and summary["memory"][0]["agree"] is None


def test_the_deliberate_oom_run_must_be_recorded_as_oom(tmp_path):
    """The --max-memory 256MiB run of scripts/gpu_check.sh: oom (exit 1) passes; ok or error fails."""
    oom = dict(record("lora"), status="oom", error="DeviceBudgetExceeded: CUDA out of memory for the budget")
    code, line, _ = summarise(tmp_path, [record("lora")], extra=[("oom", [oom])])
    assert code == 0 and "oom 1/1 oom" in line, line
    code, line, _ = summarise(tmp_path, [record("lora")], extra=[("oom", [record("lora")])])
    assert code == 1 and "profile oom (exit 1, 0/1 oom)" in line
    crashed = dict(record("lora"), status="error", error="RuntimeError: CUBLAS_STATUS_NOT_INITIALIZED")
    code, line, _ = summarise(tmp_path, [record("lora")], extra=[("oom", [crashed])])
    assert code == 1 and "profile oom" in line


def test_the_one_screen_summary_names_each_check_its_budget_and_a_timeout(tmp_path):
    (tmp_path / "gpu-tests.xml").write_text(JUNIT.format(extra=""))
    for name, rows in (("smoke", [record("lora")]), ("default", [])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = subprocess.run([sys.executable, str(ROOT / "scripts/gpu_check_summary.py"), str(tmp_path),
                           "--gpu", "Fake H100",
                           "--profile=smoke=0", "--profile=default=124", "--budget=tests=150", "--budget=smoke=85",
                           "--budget=default=179"], capture_output=True, text=True)
    screen = (tmp_path / "summary.md").read_text().splitlines()
    assert done.returncode == 1 and len(screen) <= 40 and screen[0] == "# gpu-check: Fake H100"
    assert "budgets (s): tests 150, smoke 85, default 179; total 414" in screen
    assert "| smoke | ok | 1/1 ok, exit 0 |" in screen
    assert "| default | fail | 0/0 ok, timed out at its budget |" in screen
    assert "| gpu tests | ok | 1 passed, 0 failed, 1 skipped |" in screen and "| | skip | needs sm80 |" in screen
    assert screen[-1].startswith("gpu-check: FAIL") and done.stdout.strip().splitlines()[-1] == screen[-1]
