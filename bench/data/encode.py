"""Normal-form examples -> token ids and labels, before any truncation or padding.

prompt/completion (also Alpaca and the built-in tasks), as TRL and torchtune build them:
    ids = tok(prompt) + tok(completion, no special tokens) + [eos]
    labels = -100 on the prompt, ids on the completion and the eos (train_on_prompt: ids everywhere)
so the supervised span is exactly the completion's own tokens, whatever BPE would have merged
across the boundary. text: tok(text) + [eos], all supervised.
chat: the tokenizer's chat template renders the conversation turn by turn. For each assistant
turn, render(turns before, add_generation_prompt=True) and render(turns up to it) must extend the
text rendered so far (the prefix property); the assistant's span is what the second adds to
the first, end-of-turn marker included. Segments are tokenised without special tokens (the
template writes them) and only assistant spans are supervised. A template that rewrites earlier
turns (some drop past reasoning) breaks the property: a BenchError says so.
"""

from dataclasses import dataclass

from bench.util.errors import BenchError

IGNORE = -100


@dataclass(frozen=True)
class Encoded:
    """One example's full ids and labels (IGNORE where not supervised)."""
    ids: tuple
    labels: tuple

    def first_supervised(self):
        """Index of the first position whose label counts in the loss (HF shifts: position >= 1)."""
        return next((i for i, label in enumerate(self.labels) if label != IGNORE and i >= 1), None)


def _eos(tokenizer) -> list:
    return [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []


def _ids(tokenizer, texts, *, special: bool) -> list:
    if not texts:
        return []
    return tokenizer(list(texts), add_special_tokens=special)["input_ids"]


def _pairs(tokenizer, prompts, completions, *, train_on_prompt: bool) -> list:
    eos = _eos(tokenizer)
    out = []
    for p, c in zip(_ids(tokenizer, prompts, special=True), _ids(tokenizer, completions, special=False)):
        target = list(c) + eos
        labels = (list(p) if train_on_prompt else [IGNORE] * len(p)) + target
        out.append(Encoded(tuple(p) + tuple(target), tuple(labels)))
    return out


def split_differs(tokenizer, prompts, completions) -> int:
    """How many prompt/completion pairs tokenise differently split (prompt, then completion without
    special tokens: what ftbench trains on) than joined (prompt + completion at once: what lm-eval's
    loglikelihood scores, which then takes the continuation's tokens from the end). A pair that
    differs trains on tokens the scored answer does not consist of."""
    split = [list(p) + list(c) for p, c in zip(_ids(tokenizer, prompts, special=True),
                                                _ids(tokenizer, completions, special=False))]
    joined = _ids(tokenizer, [p + c for p, c in zip(prompts, completions)], special=True)
    return sum(1 for s, j in zip(split, joined) if s != list(j))


def _texts(tokenizer, texts) -> list:
    eos = _eos(tokenizer)
    return [Encoded(tuple(ids) + tuple(eos), tuple(ids) + tuple(eos)) for ids in _ids(tokenizer, texts, special=True)]


def _render(tokenizer, messages, *, generation: bool, where: str) -> str:
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)
    except Exception as exc:  # jinja raises TemplateError for roles or orders it refuses
        raise BenchError(f"{where}: the tokenizer's chat template refused this conversation: "
                         f"{' '.join(str(exc).split())[:160]}") from None


def chat_segments(tokenizer, messages, *, where: str) -> list:
    """[(text, is_assistant_turn)] whose concatenation is the rendered conversation."""
    segments, done = [], ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], generation=True, where=where) if i else ""
        after = _render(tokenizer, messages[:i + 1], generation=False, where=where)
        if not (before.startswith(done) and after.startswith(before)):
            raise BenchError(f"{where}: the chat template does not render turn by turn (rendering message {i} "
                             "changes text rendered before it), so assistant turns cannot be masked; "
                             "use the prompt-completion format instead")
        segments += [(before[len(done):], False), (after[len(before):], True)]
        done = after
    full = _render(tokenizer, messages, generation=False, where=where)
    if not full.startswith(done):
        raise BenchError(f"{where}: the chat template renders the whole conversation differently from its "
                         "turns, so assistant turns cannot be masked; use the prompt-completion format instead")
    return segments + [(full[len(done):], False)]


def _chat(tokenizer, example, *, train_on_prompt: bool, where: str) -> Encoded:
    ids, labels = [], []
    for text, supervised in chat_segments(tokenizer, example["messages"], where=where):
        if not text:
            continue
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        labels += piece if (supervised or train_on_prompt) else [IGNORE] * len(piece)
    return Encoded(tuple(ids), tuple(labels))


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def encode_all(tokenizer, examples: list, *, fmt: str, train_on_prompt: bool, where: str) -> list:
    """Encoded examples, in order. `fmt` is the normal form: text, prompt-completion or chat."""
    if fmt == "text":
        return _texts(tokenizer, [e["text"] for e in examples])
    if fmt == "chat":
        if not has_chat_template(tokenizer):
            raise BenchError(f"{where}: chat data needs a tokenizer with a chat template, and "
                             f"{getattr(tokenizer, 'name_or_path', 'this tokenizer')} has none; use a model whose "
                             "tokenizer has one, or the prompt-completion format")
        return [_chat(tokenizer, e, train_on_prompt=train_on_prompt, where=f"{where} example {e['id']!r}")
                for e in examples]
    return _pairs(tokenizer, [e["prompt"] for e in examples], [e["completion"] for e in examples],
                  train_on_prompt=train_on_prompt)
