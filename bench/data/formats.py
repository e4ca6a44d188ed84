"""The four shapes of training data, detected from a dataset's fields, and their normal form.

    text                 {"text"}                              every token is supervised
    prompt-completion    {"prompt", "completion"}              loss on the completion only (by default)
    alpaca               {"instruction", "input"?, "output"}   Stanford Alpaca's prompt, loss on the output
    chat                 {"messages": [{role, content}, ...]}  the tokenizer's chat template, loss on
                                                               assistant turns

Detection looks at the column names only; other columns are ignored, and an `id` column (when
its values are unique) names the examples. Where several shapes fit, the first in the order
above wins among chat, prompt-completion, alpaca, text; `data_format` forces one. Every example
becomes one of three normal forms, {id, text}, {id, prompt, completion} or {id, messages}:
that is what the fingerprint hashes and what the tokenizer sees.
"""

from bench.errors import BenchError, choices_error

FIELDS = {
    "text": ("text",),
    "prompt-completion": ("prompt", "completion"),
    "alpaca": ("instruction", "output"),
    "chat": ("messages",),
}
FORMATS = ("auto", *FIELDS)
DETECT_ORDER = ("chat", "prompt-completion", "alpaca", "text")
ROLES = ("system", "user", "assistant", "tool")

# Stanford Alpaca's two templates (tatsu-lab/stanford_alpaca, train.py PROMPT_DICT), also torchtune's.
ALPACA_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further "
                "context. Write a response that appropriately completes the request.\n\n"
                "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
ALPACA_NO_INPUT = ("Below is an instruction that describes a task. Write a response that appropriately "
                   "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n")


def expected() -> str:
    return "; ".join(f"{name}: {', '.join(fields)}" for name, fields in FIELDS.items())


def detect(columns, *, forced: str = "auto", where: str) -> str:
    """The format of a dataset with these column names, or BenchError naming found and expected fields."""
    if forced not in FORMATS:
        raise choices_error("data format", forced, FORMATS)
    columns = list(columns)
    found = ", ".join(columns) or "none"
    if forced != "auto":
        missing = [f for f in FIELDS[forced] if f not in columns]
        if missing:
            raise BenchError(f"{where}: data_format {forced!r} needs fields {', '.join(FIELDS[forced])} "
                             f"but {', '.join(missing)} missing (fields found: {found})")
        return forced
    for name in DETECT_ORDER:
        if all(f in columns for f in FIELDS[name]):
            return name
    raise BenchError(f"{where}: unrecognised data shape, fields found: {found}; expected one of "
                     f"{expected()} (alpaca's input is optional)")


def _text(row: dict, field: str, *, where: str, allow_none: bool = False) -> str:
    value = row.get(field)
    if value is None and allow_none:
        return ""
    if not isinstance(value, str):
        raise BenchError(f"{where}: field {field!r} must be a string, got {type(value).__name__}")
    return value


def _messages(row: dict, *, where: str) -> list:
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BenchError(f"{where}: field 'messages' must be a non-empty list of {{role, content}}")
    out = []
    for i, m in enumerate(messages):
        if not (isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)):
            raise BenchError(f"{where}: message {i} must be {{role, content}} with role one of "
                             f"{', '.join(ROLES)} and string content, got {str(m)[:80]!r}")
        out.append({"role": m["role"], "content": m["content"]})
    if not any(m["role"] == "assistant" for m in out):
        raise BenchError(f"{where}: no assistant message, so nothing to learn from it")
    return out


def normalise(row: dict, fmt: str, *, where: str) -> dict:
    """One row in its normal form (without the id)."""
    if fmt == "text":
        return {"text": _text(row, "text", where=where)}
    if fmt == "prompt-completion":
        return {"prompt": _text(row, "prompt", where=where), "completion": _text(row, "completion", where=where)}
    if fmt == "alpaca":
        fields = {"instruction": _text(row, "instruction", where=where),
                  "input": _text(row, "input", where=where, allow_none=True)}
        prompt = (ALPACA_INPUT if fields["input"] else ALPACA_NO_INPUT).format(**fields)
        return {"prompt": prompt, "completion": _text(row, "output", where=where)}
    return {"messages": _messages(row, where=where)}


def examples(rows: list, fmt: str, *, where: str) -> list:
    """Normal-form examples with stable ids: the `id` column if unique, else the row number."""
    ids = [row.get("id") for row in rows]
    use_ids = all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids) and len(set(ids)) == len(ids)
    return [{"id": ids[n] if use_ids else n, **normalise(row, fmt, where=f"{where} row {n}")}
            for n, row in enumerate(rows)]
