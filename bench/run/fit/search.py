"""Find the largest size that trains under a budget, with as few real runs as possible.

Memory grows with batch size and with sequence length, so whether a point fits is monotone: the
search gallops from a starting guess (the planner's predicted largest fit, when there is one:
a good guess costs 2-3 runs to confirm) until it brackets the edge, then bisects. The planner's
own largest fit is the same search over its predictions. Sizes move on
a grid of `step` (1 for batch, 8 tokens for sequence length). Pure logic: `probe(n) -> bool`
runs one real training run; nothing here imports torch or starts a process.
"""

AGREEMENT = ("predicted fit, measured fit", "predicted fit, measured oom",
             "predicted oom, measured fit", "predicted oom, measured oom")


def largest(*, probe, start: int, low: int, cap: int, step: int = 1) -> dict:
    """{"largest": the largest n on the grid in [low, cap] with probe(n) true (0: not even `low`),
    "capped": True when `cap` itself fits, "probes": [(n, fits)] in the order run}."""
    probes, known = [], {}
    cap = max(low, (cap // step) * step)

    def fits(n):
        if n not in known:
            known[n] = bool(probe(n))
            probes.append((n, known[n]))
        return known[n]

    snap = lambda n: max(low, min(cap, (n // step) * step))  # noqa: E731
    n = snap(max(start, low))
    if fits(n):
        good, bad = n, None
        while bad is None and good < cap:
            n = snap(good * 2)
            good, bad = (n, None) if fits(n) else (good, n)
    else:
        good, bad = 0, n
        while good == 0 and bad > low:
            n = snap(bad // 2)
            good, bad = (n, bad) if fits(n) else (0, n)
    while bad is not None and good and bad - good > step:
        n = snap((good + bad) // 2)
        if n in (good, bad):
            break
        good, bad = (n, bad) if fits(n) else (good, n)
    return {"largest": good, "capped": good == cap, "probes": probes}


def agreement(probes, predicted_fits) -> dict:
    """Counts over the probed points of (planner's verdict, measured verdict), AGREEMENT order.
    `predicted_fits(n)` returns None where the planner has no prediction (left out)."""
    counts = dict.fromkeys(AGREEMENT, 0)
    for n, measured in probes:
        predicted = predicted_fits(n)
        if predicted is None:
            continue
        counts[f"predicted {'fit' if predicted else 'oom'}, measured {'fit' if measured else 'oom'}"] += 1
    return counts


def remaining_probes(probes, *, step: int = 1) -> int:
    """About how many more runs the search of one method needs: log2 of the open bracket."""
    good = max((n for n, ok in probes if ok), default=0)
    bad = min((n for n, ok in probes if not ok), default=None)
    if bad is None:
        return 2
    gap = max(1, (bad - good) // step)
    return max(0, gap.bit_length() - 1)
