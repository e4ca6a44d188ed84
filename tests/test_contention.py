"""bench.measure.contention: the window's figures from two samples (arithmetic on given counters),
and a real window read from this machine (types only: its load is whatever the neighbours do)."""

import os

import pytest

from bench.measure import contention

HZ = os.sysconf("SC_CLK_TCK")


def sample(*, wall, busy_ticks, idle_ticks, steal_ticks=0, own_s, load=1.0):
    # user nice system idle iowait irq softirq steal
    return {"wall": wall, "load": load, "own_s": own_s,
            "jiffies": [busy_ticks, 0, 0, idle_ticks, 0, 0, 0, steal_ticks]}


def test_others_busy_is_the_machines_busy_time_less_the_runs_own():
    start = sample(wall=100.0, busy_ticks=0, idle_ticks=0, own_s=5.0)
    # 10 s on 2 cores: 15 core-seconds busy, 5 idle; this process used 6 of the 15
    end = sample(wall=110.0, busy_ticks=15 * HZ, idle_ticks=5 * HZ, own_s=11.0, load=2.5)
    figures = contention.window(start, end)
    assert figures["others_busy_cores"] == pytest.approx(0.9)
    assert figures["steal_pct"] == 0 and figures["load_avg_start"] == 1.0 and figures["load_avg_end"] == 2.5
    assert figures["wall_s"] == pytest.approx(10.0)
    # two ranks that each used 6 core-seconds are the run, not its neighbours
    assert contention.window(start, end, world=2)["others_busy_cores"] == pytest.approx(0.3)


def test_steal_is_a_share_of_all_cpu_time_and_not_busy_time():
    start = sample(wall=0.0, busy_ticks=0, idle_ticks=0, own_s=0.0)
    end = sample(wall=10.0, busy_ticks=8 * HZ, idle_ticks=10 * HZ, steal_ticks=2 * HZ, own_s=8.0)
    figures = contention.window(start, end)
    assert figures["steal_pct"] == pytest.approx(10.0) and figures["others_busy_cores"] == pytest.approx(0.0)


def test_without_proc_stat_only_the_load_average_is_known():
    start = dict(sample(wall=0.0, busy_ticks=0, idle_ticks=0, own_s=0.0), jiffies=None)
    figures = contention.window(start, sample(wall=1.0, busy_ticks=1, idle_ticks=1, own_s=0.0, load=3.0))
    assert figures["others_busy_cores"] is None and figures["steal_pct"] is None and figures["load_avg_end"] == 3.0


def test_track_fills_the_figures_when_the_block_ends():
    with contention.track() as figures:
        assert figures == {}
        sum(i * i for i in range(200_000))
    assert figures["cores"] == os.cpu_count() and figures["wall_s"] > 0
    if contention.cpu_jiffies() is not None:
        assert figures["others_busy_cores"] >= 0 and 0 <= figures["steal_pct"] <= 100
