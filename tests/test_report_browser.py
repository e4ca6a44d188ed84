"""The report in real headless Chromium: loads with no errors, every chart draws, a screenshot is saved.

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

from bench.report import build
from tests.report_helpers import XSS_MODEL, fixture_records, write_results

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


@pytest.mark.skipif(BROWSER is None, reason="no Chromium on PATH (Debian: apt-get install chromium)")
def test_page_draws_every_chart_without_errors(tmp_path):
    records = fixture_records()
    records[2]["model"] = XSS_MODEL  # if it could escape the JSON, it would log "injected"
    index = build(sources=[write_results(tmp_path / "r", records)], out_dir=tmp_path / "out")
    done = chromium(tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom", index.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="ftbench-selfcheck"[^>]*>(.*?)</pre>', done.stdout, re.S)
    assert found and found.group(1), "the page never wrote its self-check (script did not run)"
    verdict = json.loads(found.group(1))
    assert verdict["errors"] == []
    assert set(verdict["charts"]) == {"chart-headline", "chart-throughput", "chart-memory", "chart-loss"}
    blank = {chart: ink for chart, ink in verdict["charts"].items() if ink < MIN_INK}
    assert not blank, f"charts drew (almost) nothing: {blank}"
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line and re.search(r"error|uncaught", line, re.I)]
    assert console == []

    shot = tmp_path / "report.png"
    done = chromium(tmp_path, f"--screenshot={shot}", index.as_uri())
    assert done.returncode == 0 and shot.stat().st_size > 10_000
    if os.environ.get("FTBENCH_ARTIFACTS"):
        keep = Path(os.environ["FTBENCH_ARTIFACTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / "report.png")
