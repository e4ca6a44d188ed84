"""Render a Comparison as text, one table per model and spec. Pure: returns strings, never prints."""

from bench.compare.stats import TIED

HEADER = ("pair", "metric", "n", "A", "B", "A-B", "95% interval", "McNemar p", "disagree",
          "n for 1 pt", "per seed", "verdict", "note")

LEGEND = (
    "verdict: better/worse when the 95% paired bootstrap interval of A-B excludes 0 (resampling "
    "questions) and, with one seed, McNemar's exact p < 0.05 agrees; else \"indistinguishable at this n\".\n"
    "Accuracy in % and points (pt); held-out loss per example, lower is better. disagree: share of "
    "questions answered differently ((b+c)/n).\n"
    "n for 1 pt: questions needed to detect a 1-point difference at that disagreement rate "
    "(McNemar, 5% two-sided, 80% power). per seed: mean +- sd of the per-seed differences (seeds)."
)


def _pct(value):
    return f"{100 * value:.1f}%"


def _value(row, value):
    return _pct(value) if row.kind == "accuracy" else f"{value:.3f}"


def _diff(row, value):
    return f"{100 * value:+.1f}" if row.kind == "accuracy" else f"{value:+.3f}"


def _unit(row):
    return " pt" if row.kind == "accuracy" else ""


def _p(value):
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _mcnemar(row):
    if row.mcnemar_p is not None:
        return _p(row.mcnemar_p)
    if row.mcnemar_p_seeds:
        low, high = min(row.mcnemar_p_seeds), max(row.mcnemar_p_seeds)
        return f"{_p(low)}..{_p(high)}"
    return "-"


def _per_seed(row):
    if len(row.seed_diffs) < 2:
        return "-"
    mean = sum(row.seed_diffs) / len(row.seed_diffs)
    sd = row.seed_sd * (100 if row.kind == "accuracy" else 1)
    spread = f"{sd:.1f}" if row.kind == "accuracy" else f"{sd:.3f}"
    return f"{_diff(row, mean)} +- {spread}{_unit(row)} ({len(row.seed_diffs)})"


def _note(row) -> str:
    """Dropped questions, and a single-seed McNemar test that disagrees with the interval."""
    notes = [f"{row.dropped} dropped"] if row.dropped else []
    if row.held_back:
        notes.append("interval excludes 0 but McNemar p >= 0.05: held back")
    elif row.mcnemar_p is not None and (row.mcnemar_p < 0.05) != (row.verdict != TIED):
        notes.append("McNemar p < 0.05 but the interval includes 0")
    return "; ".join(notes)


def _cells(row) -> tuple:
    verdict = row.verdict if row.verdict == TIED or row.kind == "accuracy" else f"{row.verdict} (lower)"
    return (f"{row.a} vs {row.b}", row.metric, f"{row.n:,}", _value(row, row.value_a), _value(row, row.value_b),
            _diff(row, row.diff) + _unit(row), f"[{_diff(row, row.lo)}, {_diff(row, row.hi)}]{_unit(row)}",
            _mcnemar(row), "-" if row.disagreement is None else _pct(row.disagreement),
            "-" if row.n_needed_1pt is None else f"{row.n_needed_1pt:,}", _per_seed(row), verdict, _note(row))


def _seeds(pair) -> str:
    if pair is None:
        return ""
    return f" (seed {pair[0]})" if pair[0] == pair[1] else f" (seed {pair[0]} vs {pair[1]})"


def _grid(lines) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER) - 1)]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths)) + "  " + line[-1] for line in lines]
    return "\n".join(t.rstrip() for t in text)


def render(comparison, *, resamples: int, seed: int) -> str:
    """Every table, then the unmatched pairs, the notes and the legend."""
    blocks = []
    for (model, group), methods in comparison.groups.items():
        rows = [r for r in comparison.rows if (r.model, r.group) == (model, group)]
        unmatched = [u for u in comparison.unmatched if (u.model, u.group) == (model, group)]
        if not rows and not unmatched:
            continue
        seeds = sorted({s for r in rows for pair in r.seeds for s in pair})
        title = (f"{model} (spec {group[:8]}; methods {', '.join(methods)}; seeds {', '.join(map(str, seeds)) or '-'}; "
                 f"95% paired bootstrap, {resamples:,} resamples, seed {seed})")
        lines = [title]
        if rows:
            lines.append(_grid([HEADER] + [_cells(r) for r in rows]))
        lines += [f"unmatched: {u.a} vs {u.b}{_seeds(u.seeds)}: {u.reason}; not compared" for u in unmatched]
        blocks.append("\n".join(lines))
    blocks += ["\n".join(f"note: {n}" for n in comparison.notes)] if comparison.notes else []
    blocks.append(LEGEND)
    return "\n\n".join(blocks)
