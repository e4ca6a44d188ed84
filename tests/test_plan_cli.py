"""`run_bench.py plan` end to end through bench.cli.main: JSON rows, verdicts and exit codes."""

import json

import pytest

import bench.cli as cli


@pytest.fixture(autouse=True)
def only_plan(monkeypatch):
    # other sub-commands live on other branches; the dispatcher is tested in isolation here
    monkeypatch.setattr(cli, "COMMANDS", {"plan": "bench.plan.command"})


def test_json_rows(capsys):
    rc = cli.main(["plan", "--memory", "24GB", "--models", "tiny-llama", "llama-2-70b",
                   "--methods", "full", "qlora", "--seq-len", "512", "--batch-size", "1", "2", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["rows"]
    assert len(rows) == 2 * 2 * 1 * 2 * 2            # models x methods x seq x batch x ckpt
    keys = {"model", "method", "seq_len", "batch_size", "grad_checkpointing", "predicted_bytes", "terms", "fits"}
    assert keys <= set(rows[0])
    tiny = [r for r in rows if r["model"] == "tiny-llama"]
    assert all(r["fits"] for r in tiny)
    assert not any(r["fits"] for r in rows if r["model"] == "llama-2-70b" and r["method"] == "full")
    assert any("llama-2-70b: no" in v and "2 GPUs" in v for v in out["verdicts"])


def test_table_and_only_fits(capsys):
    rc = cli.main(["plan", "--memory", "24GB", "--models", "llama-7b", "--methods", "full", "qlora",
                   "--seq-len", "512", "--batch-size", "1", "--only-fits"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "qlora" in text and " full " not in text
    assert "llama-7b: yes" in text


@pytest.mark.parametrize("argv,match", [
    (["--memory", "24XB"], "cannot parse memory size"),
    (["--memory", "24GB", "--models", "nope"], "unknown model preset 'nope'"),
    (["--memory", "24GB", "--seq-len", "-5"], "sequence length must be positive"),
    (["--memory", "24GB", "--methods", "prefix"], "unknown method"),
])
def test_bad_input_exits_2(argv, match, capsys):
    assert cli.main(["plan", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ftbench: error:") and match in err and err.count("\n") == 1


def test_config_missing_fields_exits_2(tmp_path, capsys):
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"hidden_size": 64, "vocab_size": 10}))
    assert cli.main(["plan", "--memory", "24GB", "--models", str(bad)]) == 2
    assert "missing required field" in capsys.readouterr().err


def test_planner_never_imports_torch():
    import subprocess
    import sys

    code = ("import sys, bench.plan.command as c, bench.plan as p;"
            "p.estimate(config=p.presets.load('tiny-llama')[1], method='qlora', seq_len=8, batch_size=1,"
            " grad_checkpointing=False);"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
