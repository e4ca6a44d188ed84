"""Render a Comparison as text, one table per model and spec. Pure: returns strings, never prints."""

from bench.results.compare.stats import MIN_FLIPS, TIED

HEADER = ("pair", "metric", "n", "A", "B", "A-B", "95% interval", "p", "Holm p", "McNemar p", "disagree",
          "n for 1 pt", "per seed", "checkpoints", "verdict", "note")

LEGEND = (
    "verdict [method, k seeds]: is the method better over training noise? The seed is the unit: a t-interval "
    "(df k-1) of A-B over the k\nper-seed differences, its variance carrying the question noise too "
    "(docs/compare.md); the interval and p are this test's.\n"
    "verdict [these checkpoints, these questions] (one seed), and the checkpoints column with several: are "
    "these trained runs better on\nthese questions? Both the 95% paired bootstrap interval of A-B (seeds, then "
    "questions) excludes 0 and the sign-flip p of the\nper-question differences (exact for accuracy, = McNemar "
    "with one seed) is below 0.05 (its Holm p in brackets).\n"
    "Every verdict needs its p below 0.05 after Holm's adjustment over the family (Holm p), else "
    "\"indistinguishable at this n\", shown with\nits mde: the smallest true difference that test detects "
    "with 80% power at this n (unadjusted 5%).\n"
    "Accuracy in % and points (pt); <task>.prob: the gold choice's probability among the choices, in % and pt; "
    "held-out loss per example, lower is better.\n"
    "disagree: share of questions answered differently ((b+c)/n). n for 1 pt: questions needed to detect a "
    "1-point difference (5% two-sided, 80% power;\naccuracy: McNemar at that disagreement rate; prob: paired "
    "t at that spread, at least 6:\nthe fewest questions a sign-flip test can resolve at 5%). "
    "per seed: mean +- sd of the per-seed differences (seeds).\n"
    "exploratory: MMLU category rows rest on few questions; they are in the family but are not headline findings."
)


def _pct(value):
    return f"{100 * value:.1f}%"


def _value(row, value):
    return f"{value:.3f}" if row.kind == "loss" else _pct(value)


def _diff(row, value):
    return f"{value:+.3f}" if row.kind == "loss" else f"{100 * value:+.1f}"


def _unit(row):
    return "" if row.kind == "loss" else " pt"


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
    sd = row.seed_sd * (1 if row.kind == "loss" else 100)
    spread = f"{sd:.3f}" if row.kind == "loss" else f"{sd:.1f}"
    return f"{_diff(row, mean)} +- {spread}{_unit(row)} ({len(row.seed_diffs)})"


def _note(row) -> str:
    """Dropped questions, exploratory rows, and a verdict the p-value held back."""
    notes = [f"{row.dropped} dropped"] if row.dropped else []
    if row.hash_mismatch:
        notes.append(f"{row.hash_mismatch} with another doc_hash not paired")
    if row.exploratory:
        notes.append("exploratory")
    if row.held_back == "permutation":
        notes.append("interval excludes 0 but p >= 0.05: held back")
    elif row.held_back == "holm":
        notes.append("interval excludes 0 and p < 0.05, but Holm p >= 0.05: held back")
    elif row.verdict == TIED and row.p < 0.05 and (row.p_adjusted is None or row.p_adjusted < 0.05):
        notes.append("p < 0.05 but the interval includes 0")
    if row.scope == "method" and row.checkpoint_verdict != TIED and row.verdict == TIED:
        notes.append("these checkpoints differ; the method is not shown to")
    return "; ".join(notes)


def scope_label(row) -> str:
    """What a headline verdict is about."""
    return f"method, {len(row.seeds)} seeds" if row.scope == "method" else "these checkpoints, these questions"


def verdict_text(row) -> str:
    """The headline verdict with what it is about, and beside "indistinguishable" the smallest
    difference the test could have detected (its mde)."""
    verdict = row.verdict if row.verdict == TIED or row.kind != "loss" else f"{row.verdict} (lower)"
    if row.verdict == TIED:
        verdict += f", mde {_mde(row)}"
    return f"{verdict} [{scope_label(row)}]"


def _mde(row) -> str:
    return f"{row.mde:.3f}" if row.kind == "loss" else f"{100 * row.mde:.1f} pt"


def _checkpoints(row) -> str:
    if row.scope != "method":
        return "-"
    held = "-" if row.checkpoint_p_adjusted is None else _p(row.checkpoint_p_adjusted)
    verdict = row.checkpoint_verdict if row.checkpoint_verdict == TIED else row.checkpoint_verdict
    return f"{'indistinguishable' if verdict == TIED else verdict} ({held})"


def _cells(row) -> tuple:
    return (f"{row.a} vs {row.b}", row.metric, f"{row.n:,}", _value(row, row.value_a), _value(row, row.value_b),
            _diff(row, row.diff) + _unit(row), f"[{_diff(row, row.lo)}, {_diff(row, row.hi)}]{_unit(row)}",
            _p(row.p) + ("t" if row.scope == "method" else "" if row.p_exact else "~"),
            "-" if row.p_adjusted is None else _p(row.p_adjusted),
            _mcnemar(row), "-" if row.disagreement is None else _pct(row.disagreement),
            "-" if row.n_needed_1pt is None else f"{row.n_needed_1pt:,}", _per_seed(row), _checkpoints(row),
            verdict_text(row), _note(row))


def _seeds(pair) -> str:
    if pair is None:
        return ""
    return f" (seed {pair[0]})" if pair[0] == pair[1] else f" (seed {pair[0]} vs {pair[1]})"


def _grid(lines) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER) - 1)]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths)) + "  " + line[-1] for line in lines]
    return "\n".join(t.rstrip() for t in text)


def family_line(comparison) -> str:
    """How many verdicts were drawn together, and how their p-values were adjusted."""
    pairs = len({(r.model, r.group, r.a, r.b) for r in comparison.rows})
    metrics = len({r.metric for r in comparison.rows})
    how = ("Holm-adjusted p (family-wise error <= 5%)" if comparison.adjust == "holm"
           else "p-values NOT adjusted (--adjust none): about 1 in 20 true nulls still gives better or worse")
    left = len(getattr(comparison, "left_out", []))
    gone = f"; {left} row(s) left out, named below" if left else "; no row left out"
    return f"family: {comparison.family} verdicts ({pairs} pairs x up to {metrics} metrics){gone}; {how}"


def render(comparison, *, resamples: int, seed: int) -> str:
    """The family line, every table, then the unmatched pairs, the notes and the legend."""
    blocks = [family_line(comparison)]
    for (model, group), methods in comparison.groups.items():
        rows = [r for r in comparison.rows if (r.model, r.group) == (model, group)]
        unmatched = [u for u in comparison.unmatched if (u.model, u.group) == (model, group)]
        if not rows and not unmatched:
            continue
        seeds = sorted({s for r in rows for pair in r.seeds for s in pair})
        title = (f"{model} (spec {group[:8]}; methods {', '.join(methods)}; seeds {', '.join(map(str, seeds)) or '-'}; "
                 f"95% paired bootstrap, {resamples:,} resamples, seed {seed}; ~: p from {max(resamples, MIN_FLIPS):,} "
                 "random sign flips; t: p of the t over seeds)")
        lines = [title]
        if rows:
            lines.append(_grid([HEADER] + [_cells(r) for r in rows]))
        lines += [f"unmatched: {u.a} vs {u.b}{_seeds(u.seeds)}: {u.reason}; not compared" for u in unmatched]
        blocks.append("\n".join(lines))
    blocks += ["\n".join(f"left out: {n}" for n in comparison.left_out)] if comparison.left_out else []
    blocks += ["\n".join(f"note: {n}" for n in comparison.notes)] if comparison.notes else []
    blocks.append(LEGEND)
    return "\n\n".join(blocks)
