"""Live tensor bytes over a stretch of CPU work, from torch's profiler: the peak, per named phase.

With `profile_memory=True`, c10's CPU allocator reports every allocation made while the profiler
runs and every free of such an allocation (a free of a block allocated before is not reported).
The running sum of those reports is so the bytes allocated inside the window and still alive:
what a training step adds on top of the weights, adapters and optimizer state that existed
before it. It counts tensors (every CPU tensor comes from that allocator), not RSS: no glibc
retention, no interpreter. A saved-tensor probe (bench.measure.saved) says what is kept for
backward; this says what is alive at once, transients included. Measurement only: nothing is
logged or written.
"""

from contextlib import contextmanager


class LiveBytes:
    def __init__(self):
        self.timeline = []  # (ns, live bytes after the event), in time order
        self.phases = []    # (name, start ns, end ns)

    @contextmanager
    def track(self):
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            yield self
        events = list(prof.profiler.kineto_results.events())
        live = 0
        for e in sorted((e for e in events if e.name() == "[memory]" and e.device_type().name == "CPU"),
                        key=lambda e: e.start_ns()):
            live += e.nbytes()
            self.timeline.append((e.start_ns(), live))
        for e in events:
            if e.is_user_annotation():
                self.phases.append((e.name(), e.start_ns(), e.start_ns() + e.duration_ns()))
        self.phases.sort(key=lambda p: p[1])

    @staticmethod
    def phase(name: str):
        """Mark a phase inside `track()`: peak(name) is the largest live figure within it."""
        from torch.profiler import record_function

        return record_function(name)

    def peak(self, name: str = None) -> int:
        """The largest live figure, over the window or within one phase (0 if nothing was live)."""
        if name is None:
            return max((live for _, live in self.timeline), default=0)
        spans = [(start, end) for n, start, end in self.phases if n == name]
        if not spans:
            raise KeyError(f"no phase {name!r}; phases: {', '.join(n for n, _, _ in self.phases)}")
        return max(self.peak_span(s, e) for s, e in spans)

    def peak_span(self, start_ns: int, end_ns: int) -> int:
        """The largest live figure between two instants (the value at `start_ns` if nothing changed)."""
        return max((live for t, live in self.timeline if start_ns <= t <= end_ns), default=self.at(start_ns))

    def at(self, ns: int) -> int:
        """Live bytes just after the last event at or before `ns`."""
        live = 0
        for t, value in self.timeline:
            if t > ns:
                break
            live = value
        return live

    def at_end(self, name: str) -> int:
        """Live bytes when phase `name` ends (its last occurrence)."""
        ends = [end for n, _, end in self.phases if n == name]
        if not ends:
            raise KeyError(f"no phase {name!r}")
        return self.at(ends[-1])
