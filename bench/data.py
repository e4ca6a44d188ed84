"""Training data: MMLU's validation split (1,531 questions) in the MMLU prompt format.

It is real text the models can learn from, and it does not overlap the test split that gets
scored. Every method gets the same examples in the same order (seeded shuffle), padded or
truncated to the same length, so batches are identical tensors across methods.
"""

import json
import random

from bench import paths
from bench.errors import BenchError

LETTERS = "ABCD"


def mmlu_examples(split: str = "validation") -> list:
    """Prompt-format strings with the answer, in subject order, as lm-eval's mmlu prints them."""
    root = paths.mmlu_dir()
    files = sorted(root.glob(f"*/{split}.jsonl"))
    if not files:
        raise BenchError(f"MMLU data is missing under {root}; run: bash scripts/setup.sh")
    texts = []
    for file in files:
        subject = file.parent.name.replace("_", " ")
        for line in file.read_text().splitlines():
            row = json.loads(line)
            options = "".join(f"\n{LETTERS[i]}. {c}" for i, c in enumerate(row["choices"]))
            texts.append(f"The following are multiple choice questions (with answers) about {subject}.\n\n"
                         f"{row['question'].strip()}{options}\nAnswer: {LETTERS[row['answer']]}")
    return texts


def batches(tokenizer, *, seed: int, steps: int, grad_accum: int, batch_size: int, seq_len: int):
    """steps x grad_accum micro-batches of input_ids / attention_mask / labels (-100 on padding)."""
    texts = mmlu_examples()
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    needed = steps * grad_accum * batch_size
    chosen = [texts[order[i % len(order)]] for i in range(needed)]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    out = []
    for start in range(0, needed, batch_size):
        enc = tokenizer(chosen[start:start + batch_size], padding="max_length", truncation=True,
                        max_length=seq_len, return_tensors="pt")
        labels = enc["input_ids"].clone()
        labels[enc["attention_mask"] == 0] = -100
        out.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels})
    return out
