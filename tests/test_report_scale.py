"""The scale section of the report: memory against model size, the full : lora : qlora table, where
LoRA's advantage begins, and the planner held against the runs. On tests/fixtures/scale (three sizes,
one oom; tests/fixtures/make_scale_fixtures.py), whose figures are chosen so every expected number
below is worked out by hand from that file's PEAKS and ERRORS tables."""

import copy
import json
import subprocess
import sys

import pytest

from bench.plan import estimate, params, presets
from bench.results import store
from bench.results.report import build, planner_check, scale, scale_chart
from tests.fixtures import make_scale_fixtures as fx
from tests.report_helpers import FIXTURE, fixture_records, page_options, write_results

SCALE = fx.OUT
MIB, GB = 2**20, 2**30  # GB: the unit the charts show, GiB


@pytest.fixture(autouse=True)
def no_svg(monkeypatch):
    import bench.results.report as report

    monkeypatch.setattr(report, "svg", lambda options, echarts_js, **_: (None, "disabled in tests"))


@pytest.fixture(scope="module")
def records():
    return store.read(SCALE)[0]


@pytest.fixture(scope="module")
def ladder(records):
    return scale.ladder(records)


def test_fixture_is_what_its_generator_writes(records):
    assert [json.loads(json.dumps(r, sort_keys=True)) for r in fx.build()] == records


def test_ladder_points(ladder):
    assert [m for _, m in ladder.sizes] == ["smollm2-135m", "shape:qwen2.5-0.5b", "shape:llama-3.2-1b"]
    oom = [p for p in ladder.points if p["status"] == "oom"]
    assert [(p["model"], p["method"]) for p in oom] == [("shape:llama-3.2-1b", "full")]
    # the oom record has no params: its size is counted from the preset, as the other 1B runs measured it
    assert oom[0]["params"] == params.counts(presets.load("llama-3.2-1b")[1])["total"] == 1_235_814_400
    assert oom[0]["budget_bytes"] == 6 * 2**30 and ladder.budget_bytes == 6 * 2**30
    assert ladder.machine_bytes == 24 * 2**30
    for p in ladder.points:
        if p["status"] == "ok":  # components add up to the measured peak (unattributed in 'the rest')
            assert sum(p["components"].values()) == p["peak_bytes"]
    qwen_full = next(p for p in ladder.points if (p["model"], p["method"]) == ("shape:qwen2.5-0.5b", "full"))
    assert qwen_full["components"] == {"weights": 942 * MIB, "gradients": 0, "optimizer state": 1884 * MIB,
                                       "activations": 1200 * MIB, "the rest": (450 + 524) * MIB}


def test_ratios_and_where_lora_begins_to_pay(ladder):
    rows = {r["model"]: r for r in scale.ratios(ladder)}
    assert rows["smollm2-135m"]["ratio"] == "1.05 : 1.11 : 1"  # 2000 : 2100 : 1900 MiB
    assert rows["shape:qwen2.5-0.5b"]["ratio"] == "2.50 : 1.50 : 1"  # 5000 : 3000 : 2000
    assert rows["shape:llama-3.2-1b"]["ratio"] == "> 2.05 : 1.67 : 1"  # oom > 6144 : 5000 : 3000
    assert rows["shape:llama-3.2-1b"]["full"] == "oom (> 6.0 GiB budget)"
    text = scale.lora_advantage(ladder)
    assert text.startswith("LoRA's train peak is below full fine-tuning's from shape:qwen2.5-0.5b (494M params): "
                           "lora 2.93 GiB, full 4.88 GiB; at the size below, smollm2-135m (135M params): "
                           "lora 2.05 GiB, full 1.95 GiB.")


def test_lora_advantage_when_it_never_begins(records):
    flipped = copy.deepcopy(records)
    for r in flipped:
        if r["method"] == "lora" and r["status"] == "ok":
            r["memory"]["train"]["peak_bytes"] = 10**12
    assert scale.lora_advantage(scale.ladder(flipped)).startswith(
        "LoRA's train peak is not below full fine-tuning's at any measured size")


def test_planner_line_is_the_planner_with_the_runs_settings(ladder, records):
    lines, notes = scale.planner_lines(ladder)
    assert [q["label"] for q in lines["full"]] == ["smollm2-135m", "qwen2.5-0.5b", "llama-3.2-1b", "llama-3.2-3b",
                                                   "llama-3-8b", "llama-3-70b"]
    assert lines["full"][-1]["params"] > 70e9 and not lines["full"][-1]["measured"]
    lora = next(r for r in records if (r["model"], r["method"]) == ("shape:llama-3.2-1b", "lora"))
    direct = estimate(config=presets.load("llama-3-70b")[1], method="qlora", seq_len=256, batch_size=1,
                      grad_checkpointing=False, optimizer="adamw_torch", precision="bf16-true", kbit_upcast=False,
                      device="cpu", lora_r=8, target_modules="all-linear", lora_dropout=0.05, packing=False,
                      baseline_bytes=lora["memory"]["baseline_bytes"])
    assert lines["qlora"][-1]["total_bytes"] == direct["total_bytes"]
    # the planner agrees with the measured oom: full fine-tuning of the 1B does not fit the 6 GiB budget
    assert next(q for q in lines["full"] if q["label"] == "llama-3.2-1b")["total_bytes"] > 6 * 2**30
    assert any("llama-3-70b" in n for n in notes)


def test_planner_errors_worked_by_hand(records):
    rows = planner_check.run_rows(records)
    assert len(rows) == 8 and sum(r["in_sample"] for r in rows) == 3  # smollm2-135m set the CPU constants
    errors = {(r["model"], r["method"]): round(r["error_pct"], 6) for r in rows}
    assert errors == {k: float(sum(v)) for k, v in fx.ERRORS.items()}
    s = planner_check.summary(rows)
    assert s["out_of_sample"] == {"n": 5, "median": 3.0, "max": 10.0}  # |2, -5, 10, 1, -3|
    assert s["all"] == {"n": 8, "median": 5.5, "max": 12.0}
    assert s["methods"] == {"full": {"n": 1, "median": 2.0, "max": 2.0},  # 0.5B
                            "lora": {"n": 2, "median": 3.0, "max": 5.0},  # |-5, 1|
                            "qlora": {"n": 2, "median": 6.5, "max": 10.0}}  # |10, -3|
    assert s["components"]["activations"] == {"n": 5, "median": 1.0, "max": 5.0}  # |-1, -4, 5, 1, 0|
    assert s["components"]["the rest"] == {"n": 5, "median": 3.0, "max": 5.0}  # |3, -1, 5, 0, -3|
    assert s["components"]["weights"]["max"] == 0.0
    (oom,) = planner_check.oom_rows(records)
    assert oom["budget"] == 6 * 2**30 and oom["agrees"] is True
    # --resume appends a spec's new outcome: a failed repeat of the oom is one row, and an oom
    # that a later record of the same spec finished ok is no oom at all
    (again,) = planner_check.oom_rows(records + [dict(r) for r in records if r["status"] == "oom"])
    assert again == oom
    ok = next(r for r in records if r["status"] == "ok" and r["method"] != "base")
    resumed = [*records, {**ok, "status": "oom"}, ok]
    assert planner_check.oom_rows(resumed) == [oom]


def test_planner_check_command(tmp_path):
    done = subprocess.run([sys.executable, "scripts/planner_check.py", str(SCALE)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Planner against measured train peak, out of sample (5 runs): median |error| "
                                  "3.0%, max 10.0%; with the 3 run(s) of the calibration model: "
                                  "median 5.5%, max 12.0%.")
    assert "| shape:qwen2.5-0.5b | qlora | 0.49B | 2,000 MiB | 2,200 MiB | +10.0% |" in done.stdout
    bad = subprocess.run([sys.executable, "scripts/planner_check.py", str(tmp_path / "none")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("ftbench: error: ") and "Traceback" not in bad.stderr


def test_other_settings_stay_out_of_the_ladder(records):
    other = copy.deepcopy(records[0])
    other["config"]["batch_size"], other["run_id"] = 4, "other-setting"
    built = scale.ladder(records + [other])
    assert "other-setting" not in {p["run_id"] for p in built.points}
    assert any("1 trained run(s) at other settings" in n for n in built.notes)


def test_chart_on_the_page(tmp_path, ladder):
    options = page_options(build(sources=[SCALE], out_dir=tmp_path))
    assert list(options)[0] == "chart-scale" and not any(k.startswith("chart-headline") for k in options)
    chart = options["chart-scale"]
    assert [a["type"] for a in chart["xAxis"]] == ["log", "category"]
    top = [s for s in chart["series"] if s["xAxisIndex"] == 0]
    (oom,) = [s for s in top if s["type"] == "scatter"]
    assert oom["data"][0]["value"] == [1.2358, round(6 * 2**30 / GB, 3)]  # at its budget: it needed more
    lines = [m["yAxis"] for m in top[0]["markLine"]["data"]]
    assert lines == [round(24 * 2**30 / GB, 3), round(6 * 2**30 / GB, 3)]  # the machine, the budget
    planner_full = [s for s in top if s["name"] == "full" and s["lineStyle"].get("type") == "dashed"][0]
    assert planner_full["data"][-1]["value"][0] > 70  # out to 70B
    bottom = [s for s in chart["series"] if s["xAxisIndex"] == 1 and s.get("stack") == "measured"]
    names = chart["xAxis"][1]["data"]
    for i, p in enumerate(ladder.points):  # each stack reaches the measured peak
        if p["status"] == "ok":
            total = sum((s["data"][i] or {}).get("value", 0) for s in bottom if s["name"] in scale.COMPONENTS)
            assert total == pytest.approx(p["peak_bytes"] / GB, abs=0.01), names[i]
    oom_bar = next(s for s in bottom if s["name"] == scale_chart.OOM)
    assert [d is not None for d in oom_bar["data"]] == [p["status"] == "oom" for p in ladder.points]


def test_tables_on_the_page(tmp_path):
    html = build(sources=[SCALE], out_dir=tmp_path).read_text()
    assert "Full : LoRA : QLoRA at each size" in html and "&gt; 2.05 : 1.67 : 1" in html
    assert "The planner against these runs (out of sample)" in html
    assert "median |error| 3.0%, max 10.0%" in html


def test_no_chart_with_one_size(tmp_path, records):
    one = write_results(tmp_path / "one", [r for r in records if r["model"] == "smollm2-135m"])
    options = page_options(build(sources=[one], out_dir=tmp_path / "out1"))
    assert "chart-scale" not in options
    assert "Full : LoRA : QLoRA" not in (tmp_path / "out1" / "index.html").read_text()
    plain = page_options(build(sources=[FIXTURE], out_dir=tmp_path / "out2"))
    assert "chart-scale" not in plain and "chart-headline" in plain
    assert scale.ladder(fixture_records()) is None


def test_a_planner_gap_is_no_point(records, tmp_path):
    gap = copy.deepcopy(records)
    gap[1]["estimate"] = {"error": "estimate unavailable: KeyError: 'num_experts'"}
    assert len(planner_check.run_rows(gap)) == 7  # the run without a figure is not a row
    options = page_options(build(sources=[write_results(tmp_path / "gap", gap)], out_dir=tmp_path / "out"))
    planned = next(s for s in options["chart-scale"]["series"] if s["name"] == scale_chart.PLANNED)
    assert planned["data"][1] is None and planned["data"][0] is not None


def test_planner_check_now_re_estimates_with_this_release(records):
    # the recorded estimates are the fixture's chosen figures; --now asks the planner again
    rows = planner_check.run_rows(records, now=True)
    assert len(rows) == len(planner_check.run_rows(records))
    for row in rows:
        record = next(r for r in records if r.get("run_id") == row["run_id"])
        direct = scale.plan(record, config=scale.model_config(record)[1], method=record["method"])
        assert row["predicted"] == direct["total_bytes"] != record["estimate"]["total_bytes"]


def test_a_config_the_planner_cannot_price_is_said_as_such(records, tmp_path):
    """A GPT-2 checkpoint has a config.json; the note says the planner does not price it, not 'no config'."""
    gpt2 = tmp_path / "gpt2-tiny"
    gpt2.mkdir()
    (gpt2 / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
                                                  "n_embd": 64, "n_layer": 2, "n_head": 2, "vocab_size": 100}))
    renamed = copy.deepcopy(records)
    for r in renamed:
        if r["model"] == "smollm2-135m":
            r["model"], r["model_path"] = "gpt2-tiny", str(gpt2)
    _, notes = scale.planner_lines(scale.ladder(renamed))
    (note,) = [n for n in notes if n.startswith("gpt2-tiny")]
    assert "the planner cannot price its config" in note and "model_type 'gpt2'" in note
    assert not any("no config for" in n for n in notes)


@pytest.mark.parametrize("n, shown", [(8_030_261_248, "8.03B"), (134_515_008, "135M"), (1_032_320, "1.03M"),
                                      (34_816, "34.8K")])
def test_parameter_counts_read_at_their_scale_never_0_00B(n, shown):
    assert scale.params_text(n) == shown
