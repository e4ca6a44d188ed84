"""The CPU model against harness records committed in the repository (bench.plan.calibration).

reports/samples/plan-calibration/ holds the smollm2-135m runs the allocator fraction was fitted
on (in-sample: a regression guard); reports/samples/plan-out-of-sample/ holds runs of models the
fit never saw (tiny-llama and oos-llama, a random Llama of another shape), the real check.
"""

import re
from pathlib import Path

import pytest

from bench.plan import calibration, predict

ROOT = Path(__file__).resolve().parents[1]
FIT = ROOT / "reports/samples/plan-calibration/results.jsonl"
HELD_OUT = ROOT / "reports/samples/plan-out-of-sample/results.jsonl"
DOC = ROOT / "docs/plan.md"


def test_committed_fraction_is_the_fit_of_the_committed_records():
    rows = calibration.load(FIT)
    assert len(rows) >= 8 and {r["model"] for r in rows} == {"smollm2-135m"}
    assert calibration.fit(rows) == pytest.approx(predict.CPU_ALLOCATOR_FRACTION)


@pytest.mark.parametrize("path,name,bound", [(FIT, "calibration", 15.0), (HELD_OUT, "out-of-sample", 16.0)])
def test_errors_within_the_documented_bound_and_docs_current(path, name, bound):
    rows = calibration.load(path)
    errors = [abs(calibration.predict(r)["error_pct"]) for r in rows]
    assert max(errors) <= bound
    block = re.search(rf"<!-- {name}:start -->\n(.*?)\n<!-- {name}:end -->", DOC.read_text(), re.S)
    assert block and block.group(1).strip() == calibration.table(rows).strip()


def test_out_of_sample_models_were_not_in_the_fit():
    fitted = {r["model"] for r in calibration.load(FIT)}
    held = {r["model"] for r in calibration.load(HELD_OUT)}
    assert held and not held & fitted
