"""Bad rows in a user's file: every one named by its 1-based line in one message, or skipped and counted."""

import json

import pytest

from bench.data import sources
from bench.results import store
from bench.util.errors import BenchError
from tests.conftest import one_clean_error_line, run_cli


def alpaca_with_three_bad_lines(path, n=60):
    """Alpaca rows, one per line; line 7 lacks its output, line 21's instruction is an int, line 41
    is cut off mid-object."""
    lines = [json.dumps({"instruction": f"Say {i}.", "output": f"{i} and {i * 7}"}) for i in range(1, n + 1)]
    lines[6] = json.dumps({"instruction": "Say 7."})
    lines[20] = json.dumps({"instruction": 21, "output": "twenty-one"})
    lines[40] = lines[40][:25]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_bad_line_is_named_in_one_message(tmp_path):
    path = alpaca_with_three_bad_lines(tmp_path / "mine.jsonl")
    with pytest.raises(BenchError) as info:
        sources.load(str(path))
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "3 bad lines" in message
    assert "line 7: missing field 'output'" in message
    assert "line 21: field 'instruction' must be a string, got int" in message
    assert "line 41: not valid JSON" in message
    assert message.index("line 7:") < message.index("line 21:") < message.index("line 41:")
    assert "--skip-bad-rows" in message


def test_skipping_keeps_the_good_rows_and_says_why_the_others_went(tmp_path):
    path = alpaca_with_three_bad_lines(tmp_path / "mine.jsonl")
    _, fmt, examples, skipped = sources.load(str(path), skip_bad_rows=True)
    assert fmt == "alpaca" and len(examples) == 57
    assert [place for place, _ in skipped] == ["line 7", "line 21", "line 41"]


def test_the_list_is_capped_and_the_rest_counted(tmp_path):
    rows = [{"text": f"t{i}"} if i % 2 else {"text": i} for i in range(60)]  # 30 ints, on even rows
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(BenchError) as info:
        sources.load(str(path))
    message = str(info.value)
    assert "30 bad lines" in message and message.count("must be a string, got int") == 20
    assert "line 39:" in message and "line 41:" not in message and "and 10 more" in message


def test_sharegpt_conversations_are_read_as_chat(tmp_path):
    row = {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"},
                             {"from": "gpt", "value": "Hello!"}]}
    path = tmp_path / "share.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps({"conversations": [{"from": "robot", "value": "x"}]}) + "\n")
    with pytest.raises(BenchError, match=r"line 2: conversations item 0 must be \{from, value\} with from one of "
                                         r"human, gpt, system"):
        sources.load(str(path))
    _, fmt, examples, _ = sources.load(str(path), skip_bad_rows=True)
    assert fmt == "sharegpt" and sources.normal_form(fmt) == "chat"
    assert examples[0]["messages"] == [{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]


def test_the_cli_lists_the_bad_lines_then_trains_past_them(tmp_path):
    """The pre-flight (and --data-check) name lines 7, 21 and 41 in one line, exit 2; with
    --skip-bad-rows tiny-llama trains and the record counts 3 skipped."""
    path = alpaca_with_three_bad_lines(tmp_path / "mine.jsonl")
    common = ("--profile", "smoke", "--methods", "lora", "--steps", "2", "--heldout", "4", "--no-eval", "--no-report",
              "--data", path)
    checked = run_cli(*common, "--data-check", "--out", tmp_path / "checked")
    message = one_clean_error_line(checked)
    assert all(f"line {n}:" in message for n in (7, 21, 41)) and not (tmp_path / "checked").exists()
    out = tmp_path / "out"
    trained = run_cli(*common, "--skip-bad-rows", "--out", out)
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-2000:]
    assert "skipped 3 bad row(s)" in trained.stdout
    (record,), _ = store.read(out)
    assert record["status"] == "ok" and record["data"]["skipped_rows"]["count"] == 3
    assert "line 41: not valid JSON" in record["data"]["skipped_rows"]["reasons"]
    assert record["data"]["train_examples"] == 57 - 4
