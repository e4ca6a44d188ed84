"""A user's own data file: each format in each file type, detection, forcing, and one-line errors.

Every file is written by the test itself. datasets' cache goes to a temp FTBENCH_CACHE.
"""

import json

import pytest

from bench.data import formats, sources
from bench.util.errors import BenchError

ROWS = {
    "text": [{"text": "The sky is blue."}, {"text": "Water is wet."}],
    "prompt-completion": [{"prompt": "2+2=", "completion": " 4"}, {"prompt": "3+3=", "completion": " 6"}],
    "alpaca": [{"instruction": "Add the numbers.", "input": "2 and 2", "output": "4"},
               {"instruction": "Say hello.", "input": "", "output": "Hello."}],
    "chat": [{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
             {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}],
}


@pytest.fixture(autouse=True)
def temp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path / "cache"))


def write(path, rows):
    """Write `rows` in the file type named by `path`'s extension."""
    import pandas as pd

    suffix = path.suffix
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif suffix == ".json":
        path.write_text(json.dumps(rows))
    elif suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    elif suffix == ".parquet":
        pd.DataFrame(rows).to_parquet(path, index=False)
    return path


CASES = [(fmt, ext) for fmt in ROWS for ext in (".jsonl", ".json", ".parquet")] + [
    ("text", ".csv"), ("prompt-completion", ".csv"), ("alpaca", ".csv")]  # CSV cannot hold a messages list


@pytest.mark.parametrize("fmt,ext", CASES)
def test_each_format_is_detected_in_each_file_type(fmt, ext, tmp_path):
    path = write(tmp_path / f"data{ext}", ROWS[fmt])
    resolved, detected, examples, _ = sources.load(str(path))
    assert resolved == str(path.resolve()) and detected == fmt
    assert [e["id"] for e in examples] == [0, 1]
    form = {"text": {"id", "text"}, "chat": {"id", "messages"}}.get(fmt, {"id", "prompt", "completion"})
    assert set(examples[0]) == form


def test_alpaca_uses_the_stanford_templates(tmp_path):
    _, _, examples, _ = sources.load(str(write(tmp_path / "a.jsonl", ROWS["alpaca"])))
    assert examples[0]["prompt"].endswith("### Instruction:\nAdd the numbers.\n\n"
                                          "### Input:\n2 and 2\n\n### Response:\n")
    assert "### Input:" not in examples[1]["prompt"]  # empty input: the no-input template
    assert examples[0]["completion"] == "4"


def test_ids_come_from_a_unique_id_column(tmp_path):
    rows = [dict(r, id=f"q{i}") for i, r in enumerate(ROWS["text"])]
    _, _, examples, _ = sources.load(str(write(tmp_path / "t.jsonl", rows)))
    assert [e["id"] for e in examples] == ["q0", "q1"]
    rows = [dict(r, id="same") for r in ROWS["text"]]
    _, _, examples, _ = sources.load(str(write(tmp_path / "dup.jsonl", rows)))
    assert [e["id"] for e in examples] == [0, 1]  # not unique: row numbers


def test_detection_order_and_forcing(tmp_path):
    both = [{"text": "whole", "prompt": "p", "completion": " c"}]
    path = write(tmp_path / "both.jsonl", both)
    assert sources.load(str(path))[1] == "prompt-completion"
    _, fmt, examples, _ = sources.load(str(path), data_format="text")
    assert fmt == "text" and examples[0]["text"] == "whole"


def test_unrecognised_shape_names_found_and_expected_fields(tmp_path):
    path = write(tmp_path / "odd.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(BenchError) as info:
        sources.load(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert "fields found: question, answer" in message
    for fmt, fields in formats.FIELDS.items():
        assert f"{fmt}: {', '.join(fields)}" in message


def test_forcing_a_format_whose_fields_are_missing(tmp_path):
    path = write(tmp_path / "t.jsonl", ROWS["text"])
    with pytest.raises(BenchError, match=r"data_format 'chat' needs fields messages but messages missing "
                                         r"\(fields found: text\)"):
        sources.load(str(path), data_format="chat")
    with pytest.raises(BenchError, match=r"unknown data format 'xml'; valid choices: auto, text"):
        sources.load(str(path), data_format="xml")


@pytest.mark.parametrize("content,expected", [
    (None, "does not exist"),
    ("", "is empty"),
    ('{"text": "a"\nnot json\n', "is not readable as json"),
])
def test_unusable_files_are_one_line_errors(content, expected, tmp_path):
    path = tmp_path / "d.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BenchError, match=expected) as info:
        sources.load(str(path))
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_unknown_extension_directory_and_unknown_name(tmp_path):
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(BenchError, match=r"extension '.txt'; valid: .jsonl, .json, .csv, .parquet"):
        sources.load(str(tmp_path / "d.txt"))
    with pytest.raises(BenchError, match="is not a file"):
        sources.load(str(tmp_path))
    with pytest.raises(BenchError, match=r"'arc-eazy' is neither a built-in \(arc-easy, arc-challenge"):
        sources.load("arc-eazy")


@pytest.mark.parametrize("row,expected", [
    ({"prompt": "p", "completion": 3}, "field 'completion' must be a string, got int"),
    ({"messages": [{"role": "user", "content": "hi"}]}, "no assistant message"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "role one of system, user, assistant, tool"),
    ({"messages": []}, "non-empty list"),
])
@pytest.mark.parametrize("ext, place", [(".jsonl", "line 1: "), (".parquet", "row 1: ")])
def test_bad_values_name_the_row(row, expected, ext, place, tmp_path):
    path = write(tmp_path / f"bad{ext}", [row, row])  # one type per column, as a file would have
    with pytest.raises(BenchError, match=expected) as info:
        sources.load(str(path))
    assert place in str(info.value) and "2 bad" in str(info.value)


def test_builtin_refuses_another_format():
    with pytest.raises(BenchError, match="built-in source 'arc-easy' is prompt-completion data"):
        sources.load("arc-easy", data_format="chat")
