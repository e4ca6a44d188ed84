"""The report and the compare page in real headless Chromium: they load with no errors, every chart
draws, the runs table fits the page width, and screenshots are saved.

The page writes its own verdict into #ftbench-selfcheck after drawing (script errors, non-blank
pixels per chart canvas); `chromium --dump-dom` reads it back. Console messages are captured
with --enable-logging=stderr. Set FTBENCH_ARTIFACTS=DIR to keep the screenshot.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.results.report import build
from bench.results.report.compare_page import build_compare
from tests.report_helpers import XSS_MODEL, fixture_records, two_models, write_results

pytestmark = pytest.mark.browser

BROWSER = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--window-size=1280,2600", "--virtual-time-budget=5000"]
# Non-blank pixels per chart canvas. Measured here at 1280 px wide: a canvas that drew nothing has
# 0; title and axes alone (no data) 2,754-6,845; the fixture's charts 15,950-143,734.
MIN_INK = 10_000


def chromium(tmp_path, *args):
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={profile}", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def self_check(tmp_path, page: Path) -> dict:
    """Load the page, return what it wrote into #ftbench-selfcheck; no console errors allowed."""
    done = chromium(tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="ftbench-selfcheck"[^>]*>(.*?)</pre>', done.stdout, re.S)
    assert found and found.group(1), "the page never wrote its self-check (script did not run)"
    console = [line for line in done.stderr.splitlines()
               if "CONSOLE" in line and re.search(r"error|uncaught", line, re.I)]
    assert console == []
    verdict = json.loads(found.group(1))
    assert verdict["errors"] == []
    blank = {chart: ink for chart, ink in verdict["charts"].items() if ink < MIN_INK}
    assert not blank, f"charts drew (almost) nothing: {blank}"
    return verdict


def screenshot(tmp_path, page: Path, name: str) -> None:
    shot = tmp_path / name
    done = chromium(tmp_path, f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0 and shot.stat().st_size > 10_000
    if os.environ.get("FTBENCH_ARTIFACTS"):
        keep = Path(os.environ["FTBENCH_ARTIFACTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / name)


@pytest.mark.skipif(BROWSER is None, reason="no Chromium on PATH (Debian: apt-get install chromium)")
def test_page_draws_every_chart_without_errors(tmp_path):
    records = fixture_records()
    records[2]["model"] = XSS_MODEL  # if it could escape the JSON, it would log "injected"
    index = build(sources=[write_results(tmp_path / "r", records)], out_dir=tmp_path / "out")
    verdict = self_check(tmp_path, index)
    # the renamed run is a second model of another size: the scale chart draws it too, escaped
    assert set(verdict["charts"]) == {"chart-headline", "chart-scale", "chart-throughput", "chart-memory", "chart-loss",
                                      "chart-mmlu-categories"}
    screenshot(tmp_path, index, "report.png")


@pytest.mark.skipif(BROWSER is None, reason="no Chromium on PATH (Debian: apt-get install chromium)")
def test_v2_page_fits_the_width_and_draws_every_chart(tmp_path, monkeypatch):
    from bench.results.report import benefit
    from tests.fixtures import make_v2_fixtures as fx

    paired = benefit.Paired(summaries=fx.seed_summaries("v2"), learn_forget=fx.learn_forget_rows("v2"),
                            rows=fx.pair_rows("v2"))
    monkeypatch.setattr(benefit, "paired", lambda sources: paired)  # bench.results.compare's rows, from the fixture
    index = build(sources=[Path("tests/fixtures/results_v2.jsonl"), Path("tests/fixtures/results_synthetic.jsonl")],
                  out_dir=tmp_path / "out", labels=["v2", "v1"])
    verdict = self_check(tmp_path, index)
    assert verdict["overflow"]["runs"] <= 0, f"the runs table overflows the page by {verdict['overflow']['runs']} px"
    assert {"chart-headline", "chart-headline-target", "chart-headline-heldout", "chart-learn-forget",
            "chart-mmlu-categories"} <= set(verdict["charts"])
    screenshot(tmp_path, index, "report-v2.png")


@pytest.mark.skipif(BROWSER is None, reason="no Chromium on PATH (Debian: apt-get install chromium)")
def test_compare_page_renders(tmp_path):
    page = build_compare(baseline="tests/fixtures/gate_baseline.jsonl", candidate="tests/fixtures/gate_candidate.jsonl",
                         out_dir=tmp_path / "out")
    verdict = self_check(tmp_path, page)
    assert set(verdict["charts"]) == {"chart-compare"} and verdict["overflow"]["compare"] <= 0
    screenshot(tmp_path, page, "compare.png")


@pytest.mark.skipif(BROWSER is None, reason="no Chromium on PATH (Debian: apt-get install chromium)")
def test_scale_page_draws_the_size_chart(tmp_path):
    index = build(sources=[Path("tests/fixtures/scale")], out_dir=tmp_path / "out")
    verdict = self_check(tmp_path, index)
    assert list(verdict["charts"])[0] == "chart-scale" and verdict["overflow"]["runs"] <= 0
    screenshot(tmp_path, index, "report-scale.png")


@pytest.mark.skipif(BROWSER is None, reason="no Chromium on PATH (Debian: apt-get install chromium)")
def test_two_models_legend_names_each_model(tmp_path):
    out = tmp_path / "out"
    index = build(sources=[write_results(tmp_path / "r", two_models())], out_dir=out)
    verdict = self_check(tmp_path, index)
    legend = verdict["legends"]["chart-headline"]
    for model in ("smollm2-135m", "phi3-mini"):
        assert {f"{model} · {m}" for m in ("base", "full", "lora", "qlora")} <= set(legend)
        assert f"Pareto front · {model}" in legend
    if (out / "headline.svg").exists():  # node draws the static SVG from the same options
        svg = (out / "headline.svg").read_text(encoding="utf-8")
        assert "smollm2-135m · lora" in svg and "phi3-mini · lora" in svg
    screenshot(tmp_path, index, "report-two-models.png")
