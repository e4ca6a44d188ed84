"""The driver's pre-flight: bad data is refused before any run, in one line, without torch in the driver."""

import json
import shutil
import subprocess
import sys

import pytest

from bench.data import check
from bench.util.errors import BenchError
from tests.conftest import ROOT

CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_driver_gets_the_data_block_without_importing_torch(tiny_path, tmp_path):
    data = jsonl(tmp_path / "d.jsonl", [{"prompt": f"Item {i}:", "completion": f" c{i}"} for i in range(10)])
    code = ("import json, sys; from bench.data import check; "
            f"r = check(source={str(data)!r}, tokenizer_path={str(tiny_path)!r}, seq_len=16, heldout=2); "
            "print(json.dumps(r)); print('torch imported' if 'torch' in sys.modules else 'no torch')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "FTBENCH_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    answer, torch_line = done.stdout.strip().splitlines()[-2:]
    assert torch_line == "no torch"
    block = json.loads(answer)
    assert block["data"]["train_examples"] == 8 and block["data"]["heldout_examples"] == 2
    assert block["data"]["format"] == "prompt-completion" and block["data"]["source"] == str(data.resolve())
    assert set(block["token_lengths"]) == {"n", "median", "p95", "p99", "max", "seq_len_99pct_whole"}


@pytest.fixture
def child_in_process(monkeypatch):
    """The check's child (`python -m bench.data.check ARGS`, its main()) run in this process: the
    messages are the child's own, without a second interpreter importing the stack. The process
    boundary itself is test_driver_gets_the_data_block_without_importing_torch's."""
    import contextlib
    import importlib
    import io

    module = importlib.import_module("bench.data.check")  # the module (bench.data.check is also the function)

    def run(command, **kwargs):
        assert command[1:3] == ["-m", "bench.data.check"], command
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = module.main(command[3:])
        return subprocess.CompletedProcess(command, code, out.getvalue(), "")

    monkeypatch.setattr(module.subprocess, "run", run)


def test_chat_data_with_a_tokenizer_without_template(tiny_path, tmp_path, monkeypatch, child_in_process):
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path / "cache"))
    bare = tmp_path / "bare-tokenizer"
    bare.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_path / name, bare / name)
    data = jsonl(tmp_path / "chat.jsonl", [CHAT, CHAT])
    with pytest.raises(BenchError, match="chat data needs a tokenizer with a chat template") as info:
        check(source=str(data), tokenizer_path=bare, seq_len=32, heldout=0)
    assert "\n" not in str(info.value)


def test_a_short_seq_len_cuts_the_prompt_not_the_answer(tiny_path, tmp_path, monkeypatch, child_in_process):
    """A 30-token prompt at seq_len 8 used to lose every answer token (and fail the run); now the
    prompt is cut from the left and the answer kept. The three copies are one example, twice repeated."""
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path / "cache"))
    data = jsonl(tmp_path / "long.jsonl", [{"prompt": " ".join(["one"] * 30), "completion": " two"}] * 3)
    found = check(source=str(data), tokenizer_path=tiny_path, seq_len=8, heldout=0)["data"]
    assert found["duplicates_removed"] == 2 and found["train_examples"] == 1
    assert (found["truncated_examples"], found["prompt_cut_examples"], found["unsupervised_examples"]) == (1, 1, 0)
    kept = check(source=str(data), tokenizer_path=tiny_path, seq_len=8, heldout=0, keep_duplicates=True)["data"]
    assert kept["duplicates_removed"] is None and kept["train_examples"] == 3


def test_cheap_refusals_need_no_child(tmp_path, monkeypatch):
    def no_child(*args, **kwargs):
        raise AssertionError("a child was started for a check the driver can make itself")

    monkeypatch.setattr(subprocess, "run", no_child)
    with pytest.raises(BenchError, match="does not exist"):
        check(source=str(tmp_path / "missing.jsonl"), tokenizer_path=tmp_path, seq_len=8)
    with pytest.raises(BenchError, match="neither a built-in"):
        check(source="arc-hard", tokenizer_path=tmp_path, seq_len=8)
    with pytest.raises(BenchError, match="unknown data format 'yaml'"):
        check(source="arc-easy", data_format="yaml", tokenizer_path=tmp_path, seq_len=8)
