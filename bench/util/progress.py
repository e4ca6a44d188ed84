"""How far a long phase is: done out of total, with a rate and the time left, said at a bounded rate.

    progress = Progress(what="mmlu", total=228, unit="requests", say=say)
    for batch in batches:
        ...
        progress.update(len(batch))
    progress.finish()

The worker's lines reach the console through the launcher, which relays them as they come. At a
terminal (the launcher's stdout is one: FTBENCH_TTY=1 in the child's environment) a line comes at
most every TTY_EVERY_S; elsewhere (CI logs, nohup) a line per tenth of the total (LOG_STEPS) or
per LOG_EVERY_S, whichever comes first, so a log holds about ten lines per phase plus one per
LOG_EVERY_S of a long one: a phase of hours still says it is alive at least once a minute.
Nothing here measures or stores a figure; the phase's own timers do that.
"""

import os
import time

TTY_EVERY_S = 5.0
LOG_EVERY_S = 30.0
LOG_STEPS = 10             # a line per tenth of the total when not at a terminal
TTY_ENV = "FTBENCH_TTY"


def at_terminal() -> bool:
    """Whether the user reads these lines at a terminal (the launcher says so in the child's env)."""
    return os.environ.get(TTY_ENV) == "1"


def clock_text(seconds: float) -> str:
    """65 -> '1m05s', 3725 -> '1h02m'."""
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """Counts `unit`s done out of `total` and calls `say` with a line when one is due."""

    def __init__(self, *, what: str, total: int, unit: str, say, tty: bool | None = None, clock=None):
        self.what, self.total, self.unit, self.say = what, max(0, int(total)), unit, say
        self.clock = clock or time.monotonic
        self.tty = at_terminal() if tty is None else tty
        self.done, self.started = 0, self.clock()
        self.last_said, self.next_step = self.started, 1

    def update(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if self._due(now):
            self._say(now)

    def finish(self) -> None:
        """The last line: everything counted, with the overall rate."""
        self.done = max(self.done, self.total)
        self._say(self.clock())

    def _due(self, now: float) -> bool:
        if self.done >= self.total:
            return False  # finish() says the last line
        if self.tty:
            return now - self.last_said >= TTY_EVERY_S
        return now - self.last_said >= LOG_EVERY_S or self.done * LOG_STEPS >= self.next_step * self.total

    def _say(self, now: float) -> None:
        self.last_said = now
        share = self.done / self.total if self.total else 1.0
        while self.total and self.next_step * self.total <= self.done * LOG_STEPS:
            self.next_step += 1
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else None
        line = f"{self.what}: {self.done:,}/{self.total:,} {self.unit} ({100 * share:.0f}%)"
        if rate:
            line += f", {rate:.1f} {self.unit}/s"
            line += f", {clock_text((self.total - self.done) / rate)} left" if self.done < self.total \
                else f", {clock_text(elapsed)} in all"
        self.say(line)
