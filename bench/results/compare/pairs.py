"""Which runs pair with which, and one row of paired statistics per pair and metric. Never prints.

Within one model and one group (the spec without method and seed), every method is paired with
`base` and with every other method. Seeds pair with the same seed; a single `base` run (it trains
nothing) pairs with every seed. Runs whose resolved precision policy, device kind or data
fingerprint differ are never compared: they are listed as unmatched with the reason. Questions
whose lm-eval `doc_hash` differs between the two sides are not paired (counted per row).
Every row's p-value is adjusted over the family of rows compared together (Holm, by default).
"""

from dataclasses import dataclass, field, replace

import numpy as np

from bench.evaluate.mmlu.tasks import CATEGORIES, builtin_subjects
from bench.results.compare import stats
from bench.results.compare.runs import (HELDOUT, MMLU, PROB, SUITE, arm_of, doc_hashes, group_of, ran_mismatch,
                                        real_weights, scores, seed_of, suite_scores)
from bench.results.schema import METHODS

LEVEL = 0.95
ADJUSTMENTS = ("holm", "none")


@dataclass(frozen=True)
class Row:
    """A - B on one metric over the questions both answered (a_only/b_only: McNemar's b and c).
    The headline (lo, hi, p, p_adjusted, verdict) is about the method (scope "method": a t over
    the seeds, df k - 1) with several seeds, about these checkpoints (scope "checkpoints": the
    paired bootstrap and sign-flip p over questions) with one; checkpoint_* is always the latter.
    Both p's are Holm-adjusted over the same family. mde: smallest true difference the headline
    test detects with 80% power at this n (unadjusted 5%)."""
    model: str
    group: str
    a: str
    b: str
    metric: str
    kind: str            # "accuracy", "score" (0-1, higher is better) or "loss" (lower is better)
    role: object         # "target" | "extra" for tasks, None otherwise
    seeds: list          # [[seed_a, seed_b], ...] that were paired
    dropped: int         # questions scored on one side (or one seed) only, left out
    resamples: int
    level: float
    n: int
    value_a: float
    value_b: float
    diff: float
    scope: str           # "method" (several seeds) | "checkpoints" (one seed)
    df: object           # the method-level t's degrees of freedom (k - 1), None for checkpoints
    lo: float
    hi: float
    verdict: str
    p: float
    p_exact: bool
    p_adjusted: object   # None until adjusted over the family (or with adjust "none")
    mde: float
    checkpoint_lo: float
    checkpoint_hi: float
    checkpoint_p: float
    checkpoint_p_adjusted: object
    checkpoint_verdict: str
    checkpoint_held_back: object
    seed_diffs: list
    seed_sd: object
    a_only: object
    b_only: object
    mcnemar_p: object
    mcnemar_p_seeds: object
    disagreement: object
    n_needed_1pt: object
    held_back: object = None  # "permutation" | "t" | "holm": the interval excluded 0 but that p >= 0.05 (verdict tied)
    exploratory: bool = False  # an MMLU category row: few questions, reported but not a headline finding
    hash_mismatch: int = 0     # questions left out because their doc_hash differs between A and B


@dataclass(frozen=True)
class Unmatched:
    """A pair of runs (or of methods, when no seed is common: seeds None) not compared, and why."""
    model: str
    group: str
    a: str
    b: str
    seeds: object        # [seed_a, seed_b] or None
    reason: str


@dataclass
class Comparison:
    rows: list = field(default_factory=list)
    unmatched: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    groups: dict = field(default_factory=dict)  # (model, group) -> methods found
    measured: set = field(default_factory=set)  # every metric some pair could compare
    adjust: str = "holm"                         # how p-values were adjusted over the family
    family: int = 0                              # rows whose p-values form the family (pairs x metrics)
    left_out: list = field(default_factory=list)  # "model a vs b metric: reason" for each row not in the family


def method_order(methods) -> list:
    """The registry's order (base, full, lora, ...), each method's multi-process arms
    (`lora[fsdp x2]`) after it, unknown methods after them alphabetically."""
    def rank(arm):
        method = arm.split("[")[0]
        return (METHODS.index(method), arm) if method in METHODS else (len(METHODS), arm)
    return sorted(methods, key=rank)


def index(runs, notes: list) -> dict:
    """{(model, group): {method: {seed: Run}}}; of duplicate runs the last one read is kept."""
    out = {}
    for run in runs:
        r = run.record
        seeds = out.setdefault((r["model"], group_of(r)), {}).setdefault(arm_of(r), {})
        if seed_of(r) in seeds:
            notes.append(f"{r['model']} {arm_of(r)} seed {seed_of(r)}: several ok runs; the last one read is used")
        seeds[seed_of(r)] = run
        skipped = (r.get("distributed") or {}).get("eval_skipped")
        if skipped:
            notes.append(f"{r['model']} {arm_of(r)} seed {seed_of(r)}: evaluation skipped ({skipped}); "
                         "only its held-out loss, if any, can be compared")
    return out


def method_pairs(methods, *, against_base_only: bool = False) -> list:
    """(A, B): each method against base, then each method against each later one."""
    ordered = method_order(methods)
    trained = [m for m in ordered if m != "base"]
    pairs = [(m, "base") for m in trained] if "base" in methods else []
    if not against_base_only:
        pairs += [(x, y) for i, x in enumerate(trained) for y in trained[i + 1:]]
    return pairs


def mismatch(ra, rb):
    """Why two runs must not be compared (what ran differs), or None."""
    return ran_mismatch([ra.record], [rb.record])


def seed_pairs(a_seeds: dict, b_seeds: dict, *, b_is_base: bool) -> tuple:
    """([(seed_a, seed_b, run_a, run_b)], [([seed_a, seed_b] or None, reason)], [seeds on one side only])."""
    if b_is_base and len(b_seeds) == 1:
        (sb, rb), = b_seeds.items()
        candidates = [(sa, sb, ra, rb) for sa, ra in sorted(a_seeds.items())]
        left_out = []
    else:
        common = sorted(set(a_seeds) & set(b_seeds))
        candidates = [(s, s, a_seeds[s], b_seeds[s]) for s in common]
        left_out = sorted(set(a_seeds) ^ set(b_seeds))
    matched, refused = [], []
    for sa, sb, ra, rb in candidates:
        why = mismatch(ra, rb)
        if why:
            refused.append(([sa, sb], why))
        else:
            matched.append((sa, sb, ra, rb))
    if not candidates:
        refused.append((None, f"no common seed ({', '.join(map(str, sorted(a_seeds)))} vs "
                             f"{', '.join(map(str, sorted(b_seeds)))})"))
    return matched, refused, left_out


def metric_order(names) -> list:
    """Tasks first (alphabetically), the forgetting suite's mean, MMLU overall and by category,
    then held-out loss."""
    fixed = [SUITE, MMLU, MMLU + PROB] + [f"{MMLU}.{c}" for c in CATEGORIES] + [HELDOUT]
    tasks = sorted(n for n in names if n not in fixed and not n.startswith(MMLU + "."))
    return tasks + [n for n in fixed if n in names] + sorted(
        n for n in names if n.startswith(MMLU + ".") and n not in fixed)


def kind_of(metric: str) -> str:
    """accuracy for a task's or MMLU's `correct`; score for `<task>.prob` and the suite's weighted
    mean (0-1, not 0/1); loss for held-out loss."""
    return "loss" if metric == HELDOUT else "score" if metric.endswith(PROB) or metric == SUITE else "accuracy"


def metric_row(*, key, metric, scored, role, resamples, seed) -> tuple:
    """(Row or None, note or None) for one metric. scored: [(seed_a, seed_b, scores_a, scores_b)]
    over the matched seed pairs, each scores a {metric: {question: score}} dict, with the
    doc_hash of each question under the key "doc_hash" ({question: hash})."""
    model, group, a, b = key
    having = [(sa, sb, x[metric], y[metric]) for sa, sb, x, y in scored if metric in x and metric in y]
    note = None
    if len(having) < len(scored):
        note = f"{model} {a} vs {b} {metric}: measured in {len(having)} of {len(scored)} seed pairs; used those"
    every = set().union(*(set(x) | set(y) for _, _, x, y in having))
    common = set.intersection(*(set(x) & set(y) for _, _, x, y in having))
    differ = {q for q in common for _, _, x, y in scored if _hash_differs(x, y, q)}
    common -= differ
    if not common:
        why = "doc_hash differs on every shared question" if differ else "no question scored on both sides"
        return None, f"{model} {a} vs {b} {metric}: {why}"
    keys = sorted(common, key=repr)
    a_scores = np.array([[x[k] for k in keys] for _, _, x, _ in having])
    b_scores = np.array([[y[k] for k in keys] for _, _, _, y in having])
    if metric == SUITE:  # each task weighs the same over the questions *paired*, not each run's own
        weight = suite_scores(_by_task({k: 1.0 for k in keys}))
        w = np.array([weight[k] for k in keys])
        a_scores, b_scores = a_scores * w, b_scores * w
    kind = kind_of(metric)
    figures = stats.paired(a_scores, b_scores, kind=kind, resamples=resamples, seed=seed, level=LEVEL)
    row = Row(model=model, group=group, a=a, b=b, metric=metric, kind=kind, role=role,
              seeds=[[sa, sb] for sa, sb, _, _ in having], dropped=len(every) - len(common),
              resamples=resamples, level=LEVEL, exploratory=_exploratory(metric), hash_mismatch=len(differ),
              **figures)
    return row, note


def _by_task(scored: dict) -> dict:
    """{task: {question: score}} from {(task, doc_id): score}."""
    out = {}
    for key, score in scored.items():
        out.setdefault(key[0], {})[key] = score
    return out


def _hash_differs(x: dict, y: dict, question) -> bool:
    ha, hb = x.get("doc_hash", {}).get(question), y.get("doc_hash", {}).get(question)
    return ha is not None and hb is not None and ha != hb


def _exploratory(metric: str) -> bool:
    """MMLU category rows: 12-19 questions each in the default profile; shown, not headline findings."""
    return metric.startswith(MMLU + ".") and metric != MMLU + PROB


def _scorer(categories: dict):
    """run -> its scores (plus "doc_hash": {question: hash}); each run and predictions file is read once."""
    memo, cache = {}, {}

    def score(run):
        if id(run) not in memo:
            memo[id(run)] = {**scores(run, categories=categories, cache=cache),
                             "doc_hash": doc_hashes(run, cache=cache)}
        return memo[id(run)]
    return score


def _compare_pair(out: Comparison, *, key, a_seeds, b_seeds, score, metrics, resamples, seed) -> None:
    """Append one pair's rows, unmatched seed pairs and notes to `out`."""
    model, group, a, b = key
    matched, refused, left_out = seed_pairs(a_seeds, b_seeds, b_is_base=b == "base")
    out.unmatched += [Unmatched(model, group, a, b, seeds, why) for seeds, why in refused]
    if not matched:
        return
    if left_out:
        out.notes.append(f"{model} {a} vs {b}: seed(s) {', '.join(map(str, left_out))} on one side only; left out")
    scored = [(sa, sb, score(ra), score(rb)) for sa, sb, ra, rb in matched]
    names = set().union(*(set(x) & set(y) for _, _, x, y in scored)) - {"doc_hash"}
    out.measured |= names
    one_side = set().union(*(set(x) ^ set(y) for _, _, x, y in scored)) - {"doc_hash"} - names
    for metric in sorted(one_side):
        if metrics is None or metric in metrics:
            side = a if any(metric in x for _, _, x, _ in scored) else b
            why = ("no finite log-likelihoods on the other side" if metric.endswith(PROB)
                   else "not measured on the other side")
            out.left_out.append(f"{model} {a} vs {b} {metric}: scored by {side} only ({why})")
    role_of = (matched[0][2].record.get("tasks") or {})
    for metric in metric_order(names):
        if metrics is None or metric in metrics:
            role = (role_of.get(metric) or {}).get("role")
            row, note = metric_row(key=key, metric=metric, scored=scored, role=role, resamples=resamples, seed=seed)
            out.rows += [row] if row else []
            if note and row is None:
                out.left_out.append(note)
            elif note:
                out.notes.append(note)


def compare_runs(runs, *, metrics=None, against_base_only: bool = False, resamples: int = 10_000,
                 seed: int = 0, categories=None, adjust: str = "holm") -> Comparison:
    """Paired rows for every pair of methods in every (model, group), plus what could not be paired.

    metrics: names to keep (default all measured). categories: MMLU subject -> category
    (default: lm-eval's own mapping, bench.evaluate.mmlu.tasks.builtin_subjects()). adjust: "holm" adjusts
    every row's p over the family of all rows returned (pairs x metrics) and holds back a verdict
    whose adjusted p is not below 0.05; "none" leaves the p-values raw.
    """
    if adjust not in ADJUSTMENTS:
        raise ValueError(f"adjust must be one of {', '.join(ADJUSTMENTS)}, not {adjust!r}")
    out = Comparison(adjust=adjust)
    score = _scorer(_builtin_categories(out.notes) if categories is None else categories)
    for (model, group), by_method in index(real_weights(runs, out.notes), out.notes).items():
        out.groups[(model, group)] = method_order(by_method)
        if len(by_method) < 2:
            out.notes.append(f"{model} (spec {group[:8]}): only {', '.join(by_method)}; nothing to pair it with")
        for a, b in method_pairs(by_method, against_base_only=against_base_only):
            _compare_pair(out, key=(model, group, a, b), a_seeds=by_method[a], b_seeds=by_method[b], score=score,
                          metrics=metrics, resamples=resamples, seed=seed)
    return adjusted(out)


def adjusted(out: Comparison) -> Comparison:
    """`out` with the family size set and, for Holm, every row's adjusted p and held-back verdict,
    the headline p's adjusted over the family and the checkpoint p's over the same rows."""
    out.family = len(out.rows)
    if out.adjust == "holm":
        headline = stats.holm([row.p for row in out.rows])
        checkpoint = stats.holm([row.checkpoint_p for row in out.rows])
        out.rows = [replace(row, **_held(row, p, q)) for row, p, q in zip(out.rows, headline, checkpoint)]
    return out


def _held(row, p_adjusted, checkpoint_p_adjusted) -> dict:
    alpha = round(1 - row.level, 12)
    head = stats.hold_back({"verdict": row.verdict, "p": row.p, "p_adjusted": p_adjusted,
                            "held_back": row.held_back}, alpha=alpha, by="holm")
    runs = stats.hold_back({"verdict": row.checkpoint_verdict, "p": row.checkpoint_p,
                            "p_adjusted": checkpoint_p_adjusted, "held_back": row.checkpoint_held_back},
                           alpha=alpha, by="holm")
    return {"p_adjusted": p_adjusted, "verdict": head["verdict"], "held_back": head["held_back"],
            "checkpoint_p_adjusted": checkpoint_p_adjusted, "checkpoint_verdict": runs["verdict"],
            "checkpoint_held_back": runs["held_back"]}


def _builtin_categories(notes: list) -> dict:
    """lm-eval's subject -> category map; without lm-eval, categories are skipped with a note."""
    try:
        return builtin_subjects()
    except (ImportError, RuntimeError, OSError) as exc:
        notes.append(f"MMLU categories skipped: cannot read lm-eval's subject list ({exc})")
        return {}
