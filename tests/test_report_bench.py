"""Benchmark: a report over 200 records (the fixture's, varied) builds in well under 2 s here.

Run with `pytest tests/test_report_bench.py --benchmark-enable`; with benchmarks disabled
(the default addopts) it runs once as a plain smoke test. No timing is asserted.
"""

from bench.results.report import build
from tests.report_helpers import page_options, varied, write_results

N_RECORDS = 200


def test_build_200_records(benchmark, tmp_path):
    source = write_results(tmp_path / "r", varied(N_RECORDS))
    index = benchmark.pedantic(build, kwargs={"sources": [source], "out_dir": tmp_path / "out"},
                               rounds=5, iterations=1, warmup_rounds=1)
    html = index.read_text()
    assert f"{N_RECORDS} runs" in html
    points = sum(len(s["data"]) for s in page_options(index)["chart-headline"]["series"] if s["type"] == "scatter")
    assert points == sum(1 for r in varied(N_RECORDS) if r["status"] == "ok")
