"""bench.results.compare.stats against hand computations on small tables of predictions."""

import math

import numpy as np
import pytest

from bench.results.compare import stats

# Ten questions, 1 = correct. Worked by hand:
#   question  1 2 3 4 5 6 7 8 9 10
#   A         1 1 1 1 1 1 0 0 1 0    7 correct -> 70%
#   B         1 0 0 0 1 0 0 1 0 0    3 correct -> 30%
# b (only A right) = q2 q3 q4 q6 q9 = 5; c (only B right) = q8 = 1; concordant q1 q5 q7 q10.
# difference = (b - c) / n = (5 - 1) / 10 = 0.4 = 0.7 - 0.3
# exact McNemar: n_disc = 6, min(b, c) = 1, P(X <= 1 | Bin(6, 1/2)) = (C(6,0) + C(6,1)) / 2^6 = 7/64,
#   two-sided p = 2 * 7/64 = 14/64 = 0.21875
# disagreement = (b + c) / n = 6/10 = 0.6
A = [1, 1, 1, 1, 1, 1, 0, 0, 1, 0]
B = [1, 0, 0, 0, 1, 0, 0, 1, 0, 0]


def test_ten_question_table_by_hand():
    out = stats.paired([A], [B], kind="accuracy", resamples=2000, seed=0)
    assert (out["n"], out["a_only"], out["b_only"]) == (10, 5, 1)
    assert out["value_a"] == pytest.approx(0.7) and out["value_b"] == pytest.approx(0.3)
    assert out["diff"] == pytest.approx(0.4)
    assert out["mcnemar_p"] == pytest.approx(14 / 64)
    assert out["disagreement"] == pytest.approx(0.6)
    # n needed (Connor 1987), psi = 0.6, delta = 0.01, z_0.975 = 1.959964, z_0.80 = 0.841621:
    #   (1.959964 * sqrt(0.6) + 0.841621 * sqrt(0.6 - 0.0001))^2 / 0.0001
    #   = (1.518181 + 0.651862)^2 / 0.0001 = 2.170043^2 / 0.0001 = 47,090.9 -> 47,091
    assert out["n_needed_1pt"] == 47_091
    assert out["lo"] <= 0.4 <= out["hi"]
    assert out["seed_diffs"] == [pytest.approx(0.4)] and out["seed_sd"] is None


@pytest.mark.parametrize("b, c, p", [
    (0, 0, 1.0),                 # nothing discordant: no evidence
    (10, 0, 2 / 2**10),          # all 10 discordant one way: 2 * (1/2)^10
    (5, 1, 14 / 64),             # the table above
    (1, 5, 14 / 64),             # symmetric in b and c
    (3, 3, 1.0),                 # 2 * P(X <= 3 | Bin(6, 1/2)) = 2 * 42/64 > 1, clipped to 1
    (2, 0, 0.5),                 # 2 * (1/4)
])
def test_mcnemar_exact_by_hand(b, c, p):
    assert stats.mcnemar_exact(b, c) == pytest.approx(p)


def test_mcnemar_exact_large_n_is_finite():
    # 14,042 discordant questions (all of MMLU's test set): exact integers, no overflow
    p = stats.mcnemar_exact(7100, 6942)
    assert 0 < p < 1 and math.isfinite(p)


def test_clear_30_of_40_vs_10_of_40_excludes_zero():
    a = [1] * 30 + [0] * 10
    b = [0] * 20 + [1] * 10 + [0] * 10   # b = 20 only-A, c = 0: diff 0.5
    lo, hi = stats.bootstrap_interval(np.subtract(a, b), resamples=10_000, seed=0)
    assert 0 < lo <= 0.5 <= hi
    assert stats.verdict(lo, hi, higher_is_better=True) == stats.BETTER
    assert stats.verdict(-hi, -lo, higher_is_better=True) == stats.WORSE


def test_identical_predictions_include_zero():
    out = stats.paired([A], [A], kind="accuracy", resamples=1000, seed=0)
    assert (out["lo"], out["hi"], out["diff"]) == (0.0, 0.0, 0.0)
    assert out["verdict"] == stats.TIED == "indistinguishable at this n"
    assert out["mcnemar_p"] == 1.0 and out["disagreement"] == 0.0 and out["n_needed_1pt"] is None


def test_bootstrap_is_deterministic_with_a_seed():
    diffs = np.random.default_rng(0).normal(size=50)  # continuous, so another seed moves the quantiles
    first = stats.bootstrap_interval(diffs, resamples=3000, seed=7)
    assert stats.bootstrap_interval(diffs, resamples=3000, seed=7) == first
    assert stats.bootstrap_interval(diffs, resamples=3000, seed=8) != first


def test_bootstrap_matches_resampling_questions():
    # The per-value multinomial draw must give the interval that resampling question indices gives.
    rng = np.random.default_rng(1)
    diffs = rng.choice([-1.0, 0.0, 1.0], size=400, p=[0.15, 0.65, 0.20])
    lo, hi = stats.bootstrap_interval(diffs, resamples=20_000, seed=0)
    naive = diffs[np.random.default_rng(2).integers(0, diffs.size, size=(20_000, diffs.size))].mean(axis=1)
    n_lo, n_hi = np.quantile(naive, [0.025, 0.975])
    assert lo == pytest.approx(n_lo, abs=0.004) and hi == pytest.approx(n_hi, abs=0.004)
    # and the normal approximation: half-width ~ 1.96 * sd / sqrt(n)
    assert (hi - lo) / 2 == pytest.approx(1.96 * diffs.std() / math.sqrt(diffs.size), rel=0.05)


def test_bootstrap_of_continuous_values_contains_the_mean():
    losses = np.random.default_rng(3).normal(-0.2, 0.3, size=64)
    lo, hi = stats.bootstrap_interval(losses, resamples=5000, seed=0)
    assert lo < losses.mean() < hi < 0


def test_bad_bootstrap_input():
    with pytest.raises(ValueError):
        stats.bootstrap_interval([], resamples=10)
    with pytest.raises(ValueError):
        stats.bootstrap_interval([1.0], resamples=0)


def test_loss_verdict_is_lower_is_better():
    assert stats.verdict(-0.3, -0.1, higher_is_better=False) == stats.BETTER
    assert stats.verdict(0.1, 0.3, higher_is_better=False) == stats.WORSE
    assert stats.verdict(-0.1, 0.0, higher_is_better=False) == stats.TIED  # touching 0 is not excluding it


def test_needed_questions_by_hand():
    # psi = 0.2: (1.959964 * 0.447214 + 0.841621 * sqrt(0.1999))^2 / 0.0001
    #          = (0.876523 + 0.376290)^2 / 0.0001 = 1.252813^2 / 0.0001 = 15,695.4 -> 15,696
    assert stats.needed_questions(0.2) == 15_696
    # below delta the rate is floored at delta (a 1-point difference needs 1% of questions to
    # disagree): psi = 0.01 -> (0.195996 + 0.083739)^2 / 0.0001 = 782.5 -> 783
    assert stats.needed_questions(0.001) == stats.needed_questions(0.01) == 783
    assert stats.needed_questions(0.0) is None
    # more disagreement needs more questions
    assert stats.needed_questions(0.1) < stats.needed_questions(0.3)


def test_needed_questions_for_a_score_by_hand():
    # sd 0.2 (20 pt): (1.959964 + 0.841621)^2 * (0.2 / 0.01)^2 = 7.848879 * 400 = 3,139.6 -> 3,140
    assert stats.needed_questions_sd(0.2) == 3_140
    # a spread of 0.1 pt gave 1 question (0.0785 -> 1); the sign-flip test cannot resolve anything
    # below 6 questions at 5% (2 / 2^5 = 0.0625, 2 / 2^6 = 0.031)
    assert stats.needed_questions_sd(0.001) == 6
    assert stats.fewest_resolvable(0.95) == 6 and stats.fewest_resolvable(0.99) == 8  # 2/2^8 = 0.0078
    assert stats.needed_questions_sd(0.0) is None


def test_several_seeds_average_each_question_first():
    # two seeds x four questions; base-like B the same in both seeds
    a = [[1, 1, 0, 0],      # seed 0: 2/4
         [1, 0, 1, 0]]      # seed 1: 2/4
    b = [[1, 0, 0, 0],
         [1, 0, 0, 0]]
    out = stats.paired(a, b, kind="accuracy", resamples=2000, seed=0)
    # per-question means: A (1, .5, .5, 0), B (1, 0, 0, 0); diffs (0, .5, .5, 0), mean .25
    assert out["diff"] == pytest.approx(0.25) and out["n"] == 4
    assert out["seed_diffs"] == [pytest.approx(0.25), pytest.approx(0.25)] and out["seed_sd"] == 0
    # per seed: b = 1, c = 0 both times -> mean 1, 0; p = 2 * 1/2 = 1.0 each
    assert (out["a_only"], out["b_only"], out["mcnemar_p"]) == (1.0, 0.0, None)
    assert out["mcnemar_p_seeds"] == [1.0, 1.0] and out["disagreement"] == pytest.approx(0.25)


def test_mean_interval_by_hand():
    # values .1, .3: mean .2, sd = sqrt((.01 + .01) / 1) = .141421; t_{.975,1} = 12.706
    # half = 12.706 * .141421 / sqrt(2) = 1.2706
    out = stats.mean_interval([0.1, 0.3])
    assert out["mean"] == pytest.approx(0.2) and out["sd"] == pytest.approx(0.141421, abs=1e-6)
    assert out["lo"] == pytest.approx(0.2 - 1.2706) and out["hi"] == pytest.approx(0.2 + 1.2706)
    one = stats.mean_interval([0.5])
    assert one["mean"] == 0.5 and one["sd"] is one["lo"] is one["hi"] is None


def test_t_table_against_scipy():
    t = pytest.importorskip("scipy.stats").t
    for df in range(1, 201):
        assert stats.t_quantile_975(df) == pytest.approx(t.ppf(0.975, df), abs=1.5e-3), df


def test_one_seed_needs_the_exact_test_to_agree_before_calling_a_winner():
    """4 of 57 questions discordant, all one way: the percentile bootstrap's interval excludes 0
    (a resample nearly always keeps one of the four) but the exact McNemar p is 2 x 0.5^4 = 0.125."""
    from bench.results.compare import stats

    b = [1] * 4 + [0] * 53
    a = [0] * 4 + [0] * 53
    out = stats.paired([a], [b], kind="accuracy", resamples=2000, seed=0)
    assert out["hi"] < 0 and out["mcnemar_p"] == pytest.approx(0.125)
    assert out["verdict"] == stats.TIED and out["held_back"]
    many = stats.paired([[0] * 12 + [0] * 45], [[1] * 12 + [0] * 45], kind="accuracy", resamples=2000, seed=0)
    assert many["verdict"] == stats.WORSE and many["held_back"] is None  # 12 of 12 one way: p = 0.0005


# --- several seeds: the two-level bootstrap, the permutation test, Holm ------------------------

def test_two_seeds_that_disagree_in_sign_are_not_a_finding():
    """The issue's case: two seeds of a method against base on the same 40 questions, one at
    +50 points (20 questions only A right) and one at -5 (2 questions only B right).
    Averaging each question over seeds and resampling questions only gave [+13.8, +31.2] pt and
    'better'; the two-level bootstrap draws both seeds from the second one in 1 resample of 4,
    so its interval reaches below 0 and the verdict is 'indistinguishable at this n'."""
    a = [[1] * 20 + [0] * 20, [0] * 40]
    b = [[0] * 40, [0] * 20 + [1] * 2 + [0] * 18]
    out = stats.paired(a, b, kind="accuracy", resamples=10_000, seed=0)
    assert out["seed_diffs"] == [pytest.approx(0.5), pytest.approx(-0.05)]
    assert out["diff"] == pytest.approx(0.225)
    assert out["checkpoint_lo"] < 0 < out["checkpoint_hi"] and out["checkpoint_verdict"] == stats.TIED
    assert out["lo"] < 0 < out["hi"] and out["verdict"] == stats.TIED and out["scope"] == stats.METHOD
    # per-question means: 20 at +1/2, 2 at -1/2, 18 at 0. In halves: 20 of +1, 2 of -1, T = 18.
    # Flipping signs of the 22 non-zero ones: T* = 2X - 22, X ~ Bin(22, 1/2);
    # P(|T*| >= 18) = P(X >= 20) + P(X <= 2) = 2 (1 + 22 + 231) / 2^22 = 508 / 4,194,304
    assert out["checkpoint_p"] == pytest.approx(508 / 2**22)
    # so the permutation test alone would call it: better needs the interval too


def test_two_level_interval_by_hand():
    """Every question's difference is the same within a seed, so resampling questions changes
    nothing and only the seed draw matters. Two seeds at +0.5 and -0.05: a resample draws
    (s0, s0) with probability 1/4 (mean +0.5), one of each 1/2 (+0.225), (s1, s1) 1/4 (-0.05).
    The 2.5th and 97.5th percentiles are the two extremes: [-0.05, +0.5]."""
    table = [[0.5] * 30, [-0.05] * 30]
    lo, hi = stats.bootstrap_interval(table, resamples=10_000, seed=0)
    assert (lo, hi) == (pytest.approx(-0.05), pytest.approx(0.5))
    # three seeds at 0.1, 0.2, 0.6: all three draws from one seed has probability 1/27 = 3.7% > 2.5%
    lo, hi = stats.bootstrap_interval([[0.1] * 9, [0.2] * 9, [0.6] * 9], resamples=10_000, seed=0)
    assert (lo, hi) == (pytest.approx(0.1), pytest.approx(0.6))


def test_two_level_interval_is_wider_than_questions_only_when_seeds_vary():
    rng = np.random.default_rng(5)
    question = rng.normal(0, 0.3, size=200)
    agree = np.stack([question + 0.1, question + 0.1])          # seeds identical: same as one level
    one_level = stats.bootstrap_interval(question + 0.1, resamples=4000, seed=1)
    two_level = stats.bootstrap_interval(agree, resamples=4000, seed=1)
    assert two_level[1] - two_level[0] == pytest.approx(one_level[1] - one_level[0], rel=0.1)
    spread = np.stack([question + 0.3, question - 0.1])        # seeds at +0.3 and -0.1
    lo, hi = stats.bootstrap_interval(spread, resamples=4000, seed=1)
    assert hi - lo > 2 * (one_level[1] - one_level[0]) and lo < 0 < hi


def test_one_seed_draws_are_the_one_level_bootstrap():
    diffs = np.random.default_rng(4).choice([-1.0, 0.0, 1.0], size=300, p=[0.1, 0.7, 0.2])
    assert stats.bootstrap_interval([diffs], resamples=3000, seed=2) == stats.bootstrap_interval(
        diffs, resamples=3000, seed=2)


@pytest.mark.parametrize("b, c", [(5, 1), (10, 0), (3, 3), (2, 0), (0, 0), (7, 3), (20, 9)])
def test_sign_flip_on_one_seed_accuracy_is_mcnemar(b, c):
    p, exact = stats.sign_flip_p([1] * b + [-1] * c + [0] * 7)
    assert exact and p == pytest.approx(stats.mcnemar_exact(b, c))


def test_sign_flip_by_hand():
    # d = (.3, -.1, .2, .5, .05), T = .95, sum |d| = 1.15. Flipping a subset S of total s gives
    # T* = 1.15 - 2s; |T*| >= .95 iff s <= .1 or s >= 1.05: S = {}, {.1}, {.05} and their three
    # complements: 6 of the 32 flips, p = 6/32 (enumerated: 5 non-zero differences <= 16)
    assert stats.sign_flip_p([0.3, -0.1, 0.2, 0.5, 0.05, 0.0]) == (pytest.approx(6 / 32), True)
    # two seeds' accuracy, per-question means (1, .5, .5, -.5, 0): in halves (2, 1, 1, -1), T = 3.
    # T* = +-2 +-1 +-1 +-1: with +2, the three +-1 sum to 3, 1, -1, -3 in 1, 3, 3, 1 ways ->
    # T* = 5, 3, 1, -1, so 4 flips reach |T*| >= 3; as many with -2: p = 8/16
    assert stats.sign_flip_p([1, 0.5, 0.5, -0.5, 0]) == (pytest.approx(0.5), True)
    assert stats.sign_flip_p([0, 0, 0]) == (1.0, True)


def test_sign_flip_random_flips_approach_the_exact_p():
    # 20 of +0.37 and 10 of -0.37: not on a 1/q grid, 30 non-zero -> random flips; the exact
    # answer is McNemar's for b = 20, c = 10: 2 P(X <= 10 | Bin(30, 1/2)) = 0.0987
    p, exact = stats.sign_flip_p([0.37] * 20 + [-0.37] * 10, resamples=20_000, seed=0)
    assert not exact and p == pytest.approx(stats.mcnemar_exact(20, 10), abs=0.01)
    assert stats.mcnemar_exact(20, 10) == pytest.approx(0.0987, abs=1e-4)


def test_holm_by_hand():
    # p = (.01, .04, .03, .005), m = 4. Sorted: .005 x 4 = .02; .01 x 3 = .03; .03 x 2 = .06;
    # .04 x 1 = .04, raised to the running maximum .06. Back in input order:
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == [pytest.approx(v) for v in (0.03, 0.06, 0.06, 0.02)]
    assert stats.holm([None, 0.5, 0.2]) == [None, pytest.approx(0.5), pytest.approx(0.4)]  # m = 2
    assert stats.holm([0.6, 0.7]) == [1.0, 1.0]  # clipped at 1


def test_holm_holds_back_a_verdict_that_raw_p_would_give():
    row = {"verdict": stats.BETTER, "p": 0.03, "p_adjusted": 0.06, "held_back": None}
    assert stats.hold_back(row, alpha=0.05, by="holm")["verdict"] == stats.TIED
    assert stats.hold_back(row, alpha=0.05, by="holm")["held_back"] == "holm"
    assert stats.hold_back(dict(row, p_adjusted=0.04), alpha=0.05, by="holm")["verdict"] == stats.BETTER


def test_prob_rows_get_n_for_one_point_from_the_spread():
    # per-question differences (.1, -.1) x 20: mean 0, sd = sqrt(40 * .01 / 39) = .101274;
    # n = ((1.959964 + 0.841621) * .1012739 / .01)^2 = 28.37276^2 = 805.01 -> 806
    out = stats.paired([[0.6, 0.4] * 20], [[0.5] * 40], kind="score", resamples=500, seed=0)
    assert out["n_needed_1pt"] == 806 and out["mcnemar_p"] is None and out["verdict"] == stats.TIED
