"""Clean a training pool before the held-out draw: drop duplicates, and drop what the target task tests.

Examples compare on a normalised key: each text with its whitespace collapsed and case folded,
prompt and completion (or text, or each chat turn's role and content) kept apart. Of duplicates
the first is kept. A training example whose key equals a test question of the target task (its
lm-eval prompt and gold answer, bench.data.builtin.task_example) is dropped: otherwise the model
trains on questions it is then scored on. Both counts go into the record's `data` block.
No torch here.
"""


def normalise(text) -> str:
    return " ".join(str(text).split()).casefold()


def key(example: dict) -> tuple:
    """What makes two examples the same, whatever their ids: normalised texts, fields kept apart."""
    if "messages" in example:
        return tuple((m["role"], normalise(m.get("content", ""))) for m in example["messages"])
    if "text" in example:
        return ("text", normalise(example["text"]))
    return (normalise(example["prompt"]), normalise(example["completion"]))


def dedupe(examples: list) -> tuple:
    """(examples with the first of each key kept, in order; how many were removed)."""
    seen, kept = set(), []
    for example in examples:
        k = key(example)
        if k not in seen:
            seen.add(k)
            kept.append(example)
    return kept, len(examples) - len(kept)


def drop_tested(examples: list, tested: list) -> tuple:
    """(examples whose key is not one of `tested`'s keys, how many were dropped)."""
    banned = {key(t) for t in tested}
    kept = [e for e in examples if key(e) not in banned]
    return kept, len(examples) - len(kept)


def clean(examples: list, *, tested: list, keep_duplicates: bool = False) -> tuple:
    """(clean examples, {"duplicates_removed", "test_overlap_removed"}) for the `data` block.
    duplicates_removed is None when duplicates were kept on purpose."""
    removed = None
    if not keep_duplicates:
        examples, removed = dedupe(examples)
    examples, overlap = drop_tested(examples, tested)
    return examples, {"duplicates_removed": removed, "test_overlap_removed": overlap}
