import mmap
import sys

import pytest

from bench.measure.memory import CpuMemoryTracker, peak_rss_bytes, reset_peak_rss
from bench.measure.timer import throughput

MiB = 2**20
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="peak reset needs /proc/self/clear_refs (Linux)")


def touched(nbytes: int) -> mmap.mmap:
    """Fresh anonymous pages, each written, so really resident whatever the heap already holds. A
    bytearray may instead reuse freed heap memory that is still resident (once glibc's mmap
    threshold has risen in a long test session), and the phase's RSS then never moves: seen once
    in a whole-suite run, where the small phase below measured no growth at all."""
    block = mmap.mmap(-1, nbytes)
    for offset in range(0, nbytes, mmap.PAGESIZE):
        block[offset] = 1
    return block


@linux_only
def test_phase_peaks_are_really_reset():
    tracker = CpuMemoryTracker()
    with tracker.track("big"):
        touched(300 * MiB).close()
    with tracker.track("small"):
        touched(20 * MiB).close()
    big, small = tracker.phases["big"], tracker.phases["small"]
    assert big["peak_reset"] and small["peak_reset"]
    assert big["peak_bytes"] - big["start_bytes"] >= 290 * MiB
    assert small["peak_bytes"] - small["start_bytes"] >= 19 * MiB
    # without the reset, the small phase would report the big phase's peak
    assert small["peak_bytes"] < big["peak_bytes"] - 200 * MiB
    # the whole-process peak survives the resets
    assert tracker.lifetime_peak_bytes() >= big["peak_bytes"]


@linux_only
def test_without_reset_the_high_water_mark_stays():
    reset_peak_rss()
    blob = bytearray(b"\x01") * (200 * MiB)
    high = peak_rss_bytes()
    del blob
    assert peak_rss_bytes() >= high - MiB  # freeing does not lower the mark: the reset is what does


def test_throughput_excludes_warmup_and_counts_real_tokens():
    stats = throughput([10.0, 1.0, 2.0, 3.0], [100, 100, 100, 50], warmup_steps=1)
    assert stats["tokens"] == 250 and stats["tokens_per_s"] == pytest.approx(250 / 6)
    assert stats["step_time_s"]["p50"] == 2.0 and stats["step_time_s"]["p90"] == 3.0
    assert stats["step_times_s"][0] == 10.0 and stats["steps_measured"] == 3
    assert throughput([1.0], [10], warmup_steps=1) is None
