"""Progress lines while a long phase runs: the rate rule (bench.util.progress) on a fake clock, and
lm-eval's per-request counting reaching it (bench.evaluate.mmlu.scoring.reporting) through a fake LM whose
module counts with tqdm, as lm-eval's HFLM does."""

from types import SimpleNamespace

from tqdm import tqdm

from bench.evaluate.mmlu.scoring import reporting
from bench.util.progress import LOG_EVERY_S, TTY_EVERY_S, Progress


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run(*, total, step_s, tty):
    clock, lines = FakeClock(), []
    progress = Progress(what="mmlu", total=total, unit="requests", say=lines.append, tty=tty, clock=clock)
    for _ in range(total):
        clock.now += step_s
        progress.update(1)
    progress.finish()
    return lines


def test_log_gets_a_line_per_tenth_when_fast():
    lines = run(total=1000, step_s=0.001, tty=False)  # 1 s in all: the tenths come first
    assert len(lines) == 10  # 10%, 20%, ... 90% and the final line
    assert lines[0].startswith("mmlu: 100/1,000 requests (10%), 1000.0 requests/s")
    assert lines[-1].startswith("mmlu: 1,000/1,000 requests (100%)") and "in all" in lines[-1]


def test_slow_phase_says_it_is_alive_at_least_every_log_interval():
    clock, lines, said_at = FakeClock(), [], []
    progress = Progress(what="mmlu", total=100, unit="requests", tty=False, clock=clock,
                        say=lambda line: (lines.append(line), said_at.append(clock.now)))
    for _ in range(100):
        clock.now += 7.0  # 700 s for 100 requests: a tenth takes 70 s
        progress.update(1)
    gaps = [b - a for a, b in zip([0.0, *said_at], said_at)]
    assert max(gaps) <= LOG_EVERY_S + 7.0  # never silent longer than the interval plus one request
    assert len(lines) <= 100 * 7.0 / LOG_EVERY_S + 10  # bounded: one per interval plus one per tenth
    assert "left" in lines[0]


def test_terminal_gets_lines_by_time_not_by_tenth():
    lines = run(total=1000, step_s=0.001, tty=True)  # 1 s in all: under TTY_EVERY_S
    assert len(lines) == 1  # only the final line
    slow = run(total=100, step_s=1.0, tty=True)
    assert len(slow) == 100 // TTY_EVERY_S + (1 if 100 % TTY_EVERY_S else 0)


def test_empty_total_says_one_line():
    assert run(total=0, step_s=1.0, tty=False) == ["mmlu: 0/0 requests (100%)"]


class FakeLM:
    """Scores one request per tick of `clock`, counting with this module's tqdm like HFLM."""

    def __init__(self, clock):
        self.clock = clock

    def loglikelihood(self, requests, disable_tqdm=False):
        pbar = tqdm(total=len(requests), disable=True)
        out = []
        for _ in requests:
            self.clock.now += 10.0
            out.append((-1.0, False))
            pbar.update(1)
        pbar.close()
        return out


def test_lm_eval_requests_are_counted_while_scoring(monkeypatch):
    import bench.util.progress as progress_module

    clock = FakeClock()
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(monotonic=clock))
    lm, lines = FakeLM(clock), []
    requests = [SimpleNamespace(task_name="ftbench_mmlu_x", doc_id=i // 4) for i in range(40)]  # 10 questions
    monkeypatch.delenv("FTBENCH_TTY", raising=False)  # as in a CI log
    with reporting(lm, what="ftbench_mmlu", say=lines.append):
        assert len(lm.loglikelihood(requests)) == 40
    assert lines[0] == "ftbench_mmlu (10 questions): 3/40 requests (8%), 0.1 requests/s, 6m10s left"  # 30 s in
    assert lines[-1] == "ftbench_mmlu (10 questions): 40/40 requests (100%), 0.1 requests/s, 6m40s in all"
    assert len(lines) <= 400 / LOG_EVERY_S + 10
    assert "loglikelihood" not in vars(lm)  # the instance is as it was


def spec(name):
    return {"spec_hash": name}


def test_eta_before_the_first_run_ends_is_the_planners():
    from bench.run.session import eta

    text = eta(finished=[], remaining=[spec("a"), spec("b")], estimates={"a": 60.0, "b": 120.0})
    assert text == "  (ETA 3m00s, planner)"


def test_eta_blends_in_measured_times():
    from bench.run.session import eta

    estimates = {"a": 60.0, "b": 120.0, "c": 30.0}
    # run a took twice its estimate: the rest are expected to as well
    assert eta(finished=[(spec("a"), 120.0)], remaining=[spec("b"), spec("c")], estimates=estimates) \
        == "  (ETA 5m00s, planner x 2.00 from finished runs)"
    # without estimates, the mean of finished runs, as before
    assert (eta(finished=[(spec("a"), 90.0)], remaining=[spec("b")], estimates={})
            == "  (ETA 1m30s, mean of finished runs)")
    assert eta(finished=[], remaining=[spec("b")], estimates={}) == ""
