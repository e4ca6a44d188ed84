"""The four shapes of training data, detected from a dataset's fields, and their normal form.

    text                 {"text"}                              every token is supervised
    prompt-completion    {"prompt", "completion"}              loss on the completion only (by default)
    alpaca               {"instruction", "input"?, "output"}   Stanford Alpaca's prompt, loss on the output
    chat                 {"messages": [{role, content}, ...]}  the tokenizer's chat template, loss on
                                                               assistant turns
    sharegpt             {"conversations": [{from, value}, ...]}  ShareGPT's layout, read as chat
                                                               (from: human -> user, gpt -> assistant, system)

Detection looks at the column names only; other columns are ignored, and an `id` column (when
its values are unique) names the examples. Where several shapes fit, the first in the order
above wins among chat, sharegpt, prompt-completion, alpaca, text; `data_format` forces one. Every
example becomes one of three normal forms, {id, text}, {id, prompt, completion} or {id, messages}:
that is what the fingerprint hashes and what the tokenizer sees. A row that does not fit its format
is a problem named by its place in the file; `examples` collects them all rather than stopping at
the first, so one message can list every bad row.
"""

from bench.util.errors import BenchError, choices_error

FIELDS = {
    "text": ("text",),
    "prompt-completion": ("prompt", "completion"),
    "alpaca": ("instruction", "output"),
    "chat": ("messages",),
    "sharegpt": ("conversations",),
}
FORMATS = ("auto", *FIELDS)
DETECT_ORDER = ("chat", "sharegpt", "prompt-completion", "alpaca", "text")
ROLES = ("system", "user", "assistant", "tool")
SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system"}

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


class BadRow(ValueError):
    """What is wrong with one row, without saying where it is (the caller knows)."""


def _text(row: dict, field: str, *, allow_none: bool = False) -> str:
    value = row.get(field)
    if value is None and allow_none:
        return ""
    if value is None:
        raise BadRow(f"missing field {field!r}")
    if not isinstance(value, str):
        raise BadRow(f"field {field!r} must be a string, got {type(value).__name__}")
    return value


def _turns(row: dict, field: str, *, role_key: str, text_key: str, roles: dict) -> list:
    turns = row.get(field)
    if turns is None:
        raise BadRow(f"missing field {field!r}")
    if not isinstance(turns, list) or not turns:
        raise BadRow(f"field {field!r} must be a non-empty list of {{{role_key}, {text_key}}}")
    out = []
    for i, m in enumerate(turns):
        if not (isinstance(m, dict) and m.get(role_key) in roles and isinstance(m.get(text_key), str)):
            raise BadRow(f"{field} item {i} must be {{{role_key}, {text_key}}} with {role_key} one of "
                         f"{', '.join(roles)} and string {text_key}, got {str(m)[:80]!r}")
        out.append({"role": roles[m[role_key]], "content": m[text_key]})
    if not any(m["role"] == "assistant" for m in out):
        raise BadRow("no assistant message, so nothing to learn from it")
    return out


def normalise(row: dict, fmt: str) -> dict:
    """One row in its normal form (without the id); BadRow if it does not fit `fmt`."""
    if fmt == "text":
        return {"text": _text(row, "text")}
    if fmt == "prompt-completion":
        return {"prompt": _text(row, "prompt"), "completion": _text(row, "completion")}
    if fmt == "alpaca":
        fields = {"instruction": _text(row, "instruction"), "input": _text(row, "input", allow_none=True)}
        prompt = (ALPACA_INPUT if fields["input"] else ALPACA_NO_INPUT).format(**fields)
        return {"prompt": prompt, "completion": _text(row, "output")}
    if fmt == "sharegpt":
        return {"messages": _turns(row, "conversations", role_key="from", text_key="value", roles=SHAREGPT_ROLES)}
    return {"messages": _turns(row, "messages", role_key="role", text_key="content", roles=dict(zip(ROLES, ROLES)))}


def examples(rows: list, fmt: str, *, where: list) -> tuple:
    """(normal-form examples, problems): each example with a stable id (the `id` column if unique,
    else the row's 0-based position among the rows read), each problem a (place, why) pair naming a
    row that does not fit `fmt`, `where[n]` being row n's place in the file."""
    ids = [row.get("id") for row in rows]
    use_ids = all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids) and len(set(ids)) == len(ids)
    good, problems = [], []
    for n, row in enumerate(rows):
        try:
            good.append({"id": ids[n] if use_ids else n, **normalise(row, fmt)})
        except BadRow as exc:
            problems.append((where[n], str(exc)))
    return good, problems
