"""What the report and the gate reuse: learns-versus-forgets per method, and means over seeds.

`learn_forget` is each method against `base`: the gain on the target task (role "target") and
the forgetting figures: the change on the forgetting suite (the mean over the tasks with role
"forget", and per task) and on MMLU, overall and per category, each with its paired interval and
verdict. `seed_summary` is the mean and 95% t-interval over seeds of any record
figure, per (model, group, method), without reading predictions.
"""

from bench.evaluate.mmlu.tasks import CATEGORIES
from bench.results.compare import stats
from bench.results.compare.pairs import compare_runs
from bench.results.compare.runs import HELDOUT, MMLU, SUITE, Run, arm_of, as_runs, group_of, seed_of, target_task
from bench.results.schema import METHODS


def _figure(row) -> dict:
    """The part of a Row a chart needs: difference, interval, n, verdict, per-seed spread."""
    if row is None:
        return None
    return {"diff": row.diff, "lo": row.lo, "hi": row.hi, "n": row.n, "verdict": row.verdict,
            "value": row.value_a, "base": row.value_b, "seed_diffs": row.seed_diffs, "seed_sd": row.seed_sd,
            "scope": row.scope, "p": row.p, "p_adjusted": row.p_adjusted, "mde": row.mde,
            "checkpoint_verdict": row.checkpoint_verdict}


def learn_forget(records, root=None, *, resamples: int = 10_000, seed: int = 0, categories=None,
                 comparison=None) -> list:
    """One dict per (model, group, method other than base) that has a base to compare with:

    {model, group, method, seeds, target_task, target_gain, suite_change, suite_tasks, mmlu_change,
     mmlu_categories, heldout_change}. Each figure is None when not measured, else {diff, lo, hi, n, verdict,
    value, base, seed_diffs, seed_sd, scope, p, p_adjusted, mde, checkpoint_verdict}: the method
    minus base (accuracy on 0-1; held-out loss, where lower is better). `records` are dicts read
    from `root`, or Runs when root is None. A method with no run comparable to base is absent
    (compare_runs(...).unmatched says why).

    The rows are those of `comparison` (compare_runs over every pair, as `compare` shows them),
    or of one computed here the same way: one Holm family per set of runs, so the chart, the
    table and `compare` give every row the same adjusted p.
    """
    runs = list(records) if root is None else as_runs(records, root)
    if comparison is None:
        comparison = compare_runs(runs, resamples=resamples, seed=seed, categories=categories)
    found = {}
    for row in comparison.rows:
        if row.b == "base":
            found.setdefault((row.model, row.group, row.a), {})[row.metric] = row
    out = []
    for (model, group, method), rows in found.items():
        target = _target(runs, model=model, group=group, method=method)
        any_row = next(iter(rows.values()))
        out.append({
            "model": model, "group": group, "method": method,
            "seeds": sorted({sa for sa, _ in any_row.seeds}),
            "target_task": target,
            "target_gain": _figure(rows.get(target)),
            "suite_change": _figure(rows.get(SUITE)),
            "suite_tasks": {m: _figure(r) for m, r in rows.items() if r.role == "forget"},
            "mmlu_change": _figure(rows.get(MMLU)),
            "mmlu_categories": {c: _figure(rows[f"{MMLU}.{c}"]) for c in CATEGORIES if f"{MMLU}.{c}" in rows},
            "heldout_change": _figure(rows.get(HELDOUT)),
        })
    return out


def _target(runs, *, model, group, method):
    for run in runs:
        r = run.record
        if (r["model"], group_of(r), arm_of(r)) == (model, group, method) and target_task(r):
            return target_task(r)
    return None


def get(record: dict, dotted: str):
    """record['a']['b'] for 'a.b', or None where any step is missing."""
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def seed_summary(records, *, metric: str) -> list:
    """Mean and 95% t-interval over seeds of a record figure (e.g. "mmlu.acc", "heldout.loss",
    "tasks.ftbench_arc_easy.acc") per (model, group, method), ok records only.

    One dict per group: {model, group, method, metric, seeds, n, mean, sd, lo, hi}; sd, lo and hi
    are None with one seed. Of several ok records with one seed the last is used.
    """
    values = {}
    for item in records:
        r = item.record if isinstance(item, Run) else item
        value = get(r, metric)
        if r.get("status") != "ok" or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        values.setdefault((r["model"], group_of(r), arm_of(r)), {})[seed_of(r)] = float(value)
    out = []
    for (model, group, method) in sorted(values, key=lambda k: (k[0], k[1], _rank(k[2]))):
        by_seed = values[(model, group, method)]
        figures = stats.mean_interval([by_seed[s] for s in sorted(by_seed)])
        out.append({"model": model, "group": group, "method": method, "metric": metric,
                    "seeds": sorted(by_seed), **figures})
    return out


def _rank(arm: str):
    method = arm.split("[")[0]
    return (METHODS.index(method), arm) if method in METHODS else (len(METHODS), arm)
