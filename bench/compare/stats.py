"""Paired statistics for two methods scored on the same questions. Pure numpy and stdlib.

Every figure here is about A - B on questions both sides answered: the paired bootstrap
interval of the mean difference (the verdict), the exact McNemar p-value (accuracy only),
and how many questions a 1-point difference would need at the disagreement rate observed.
docs/compare.md states each definition.
"""

import math
from statistics import NormalDist

import numpy as np

BETTER, WORSE, TIED = "better", "worse", "indistinguishable at this n"

# t_{0.975, df} for df = 1..30 (any statistics table; equal to scipy.stats.t.ppf(0.975, df) to
# the 3 decimals shown, checked in tests/test_compare_stats.py when scipy happens to be there).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)

# Rows of resamples drawn at once: bounds the draw matrix to about 32 MiB whatever n is.
_CELLS_PER_CHUNK = 2**22


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: under "no difference" each of the n = b + c discordant
    questions is equally likely to favour either side, so min(b, c) ~ Binomial(n, 1/2);
    p = min(1, 2 * P(X <= min(b, c))). 1.0 when nothing is discordant."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    term = tail = 1  # C(n, 0); C(n, k + 1) = C(n, k) * (n - k) / (k + 1), exact in integers
    for k in range(min(a_only, b_only)):
        term = term * (n - k) // (k + 1)
        tail += term
    return min(1.0, 2 * tail / 2**n)  # exact integer arithmetic, then one rounding


def bootstrap_interval(diffs, *, resamples: int = 10_000, seed: int = 0, level: float = 0.95) -> tuple:
    """Percentile interval of the mean of `diffs` (one paired difference per question) over
    `resamples` resamples of the questions with replacement, seeded.

    Resampling n questions with replacement is the same as drawing how often each question is
    picked from Multinomial(n, 1/n each); questions with equal differences can be pooled, so with
    few distinct values (accuracy: -1, 0, +1 for one seed) we draw counts per value, which makes
    10,000 resamples of 14,000 questions cheap. Otherwise (losses) we draw question indices.
    Same inputs and seed give the same interval.
    """
    diffs = np.asarray(diffs, dtype=float)
    if diffs.size == 0:
        raise ValueError("bootstrap of no questions")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, not {resamples}")
    values, counts = np.unique(diffs, return_counts=True)
    n, rng = diffs.size, np.random.default_rng(seed)
    pooled = values.size * 8 <= n
    means = np.empty(resamples)
    step = max(1, min(resamples, _CELLS_PER_CHUNK // (values.size if pooled else n)))
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        if pooled:
            means[start:start + rows] = rng.multinomial(n, counts / n, size=rows) @ values / n
        else:
            means[start:start + rows] = diffs[rng.integers(0, n, size=(rows, n))].mean(axis=1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return float(lo), float(hi)


def verdict(lo: float, hi: float, *, higher_is_better: bool) -> str:
    """better / worse when the interval of A - B excludes 0, else 'indistinguishable at this n'."""
    if lo > 0:
        return BETTER if higher_is_better else WORSE
    if hi < 0:
        return WORSE if higher_is_better else BETTER
    return TIED


def needed_questions(disagreement: float, *, delta: float = 0.01, level: float = 0.95, power: float = 0.80):
    """Questions needed for a paired test at `level` to detect a true difference of `delta`
    with probability `power`, when a share `disagreement` of questions is answered differently
    (Connor 1987, the sample size of McNemar's test):

        n = (z_{1-alpha/2} * sqrt(psi) + z_power * sqrt(psi - delta^2))^2 / delta^2

    psi is the disagreement rate, floored at delta (a difference of delta needs at least that
    share of questions to disagree). None when nothing disagreed: there is no rate to go on.
    """
    if disagreement <= 0:
        return None
    psi = max(disagreement, delta)
    z_level = NormalDist().inv_cdf(1 - (1 - level) / 2)
    z_power = NormalDist().inv_cdf(power)
    root = z_level * math.sqrt(psi) + z_power * math.sqrt(psi - delta**2)
    return math.ceil(root**2 / delta**2)


def t_quantile_975(df: int) -> float:
    """Student's t quantile for a two-sided 95% interval; table to df 30, Cornish-Fisher above."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, not {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = NormalDist().inv_cdf(0.975)
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_interval(values) -> dict:
    """Mean, sample standard deviation and 95% t-interval of a few values (e.g. one per seed).
    sd and the interval are None with fewer than two values."""
    values = [float(v) for v in values]
    k = len(values)
    if k == 0:
        raise ValueError("mean of no values")
    mean = sum(values) / k
    if k < 2:
        return {"n": k, "mean": mean, "sd": None, "lo": None, "hi": None}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (k - 1))
    half = t_quantile_975(k - 1) * sd / math.sqrt(k)
    return {"n": k, "mean": mean, "sd": sd, "lo": mean - half, "hi": mean + half}


def paired(a, b, *, accuracy: bool, resamples: int, seed: int, level: float = 0.95) -> dict:
    """Every figure for one pair and metric. `a` and `b` are (seeds x questions) arrays of
    per-question scores (0/1 correctness, or a loss), row s of `a` paired with row s of `b`.

    Each question's score is its mean over seeds; the interval resamples questions. The
    per-seed differences (mean over questions, one per seed) are reported beside it.
    """
    a, b = np.atleast_2d(np.asarray(a, dtype=float)), np.atleast_2d(np.asarray(b, dtype=float))
    if a.shape != b.shape or a.shape[1] == 0:
        raise ValueError(f"paired scores need equal, non-empty shapes, not {a.shape} and {b.shape}")
    diffs = a.mean(axis=0) - b.mean(axis=0)
    lo, hi = bootstrap_interval(diffs, resamples=resamples, seed=seed, level=level)
    per_seed = (a - b).mean(axis=1)
    out = {
        "n": int(a.shape[1]), "value_a": float(a.mean()), "value_b": float(b.mean()),
        "diff": float(diffs.mean()), "lo": lo, "hi": hi,
        "verdict": verdict(lo, hi, higher_is_better=accuracy),
        "seed_diffs": [float(d) for d in per_seed],
        "seed_sd": mean_interval(per_seed)["sd"],
        "a_only": None, "b_only": None, "mcnemar_p": None, "mcnemar_p_seeds": None,
        "disagreement": None, "n_needed_1pt": None,
    }
    if accuracy:
        out.update(_discordance(a, b))
        if out["mcnemar_p"] is not None and out["mcnemar_p"] >= 0.05 and out["verdict"] != TIED:
            # with few discordant questions the percentile bootstrap is narrower than the exact test
            # (4 of 57 questions, all one way: interval excludes 0, McNemar p = 0.125): not a finding
            out["verdict"] = TIED
            out["held_back"] = True
    return out


def _discordance(a, b) -> dict:
    """McNemar's b (only A right) and c (only B right) per seed, their exact p-values, and
    the disagreement rate (b + c) / n averaged over seeds, with the questions it implies."""
    a_only = [int(k) for k in ((a == 1) & (b == 0)).sum(axis=1)]
    b_only = [int(k) for k in ((a == 0) & (b == 1)).sum(axis=1)]
    p_seeds = [mcnemar_exact(x, y) for x, y in zip(a_only, b_only)]
    rate = float(np.mean([(x + y) / a.shape[1] for x, y in zip(a_only, b_only)]))
    one = len(a_only) == 1
    return {
        "a_only": a_only[0] if one else float(np.mean(a_only)),
        "b_only": b_only[0] if one else float(np.mean(b_only)),
        "mcnemar_p": p_seeds[0] if one else None, "mcnemar_p_seeds": p_seeds,
        "disagreement": rate, "n_needed_1pt": needed_questions(rate),
    }
