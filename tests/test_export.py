"""`run_bench.py export`: every format round-trips to the records; bad input is one line, exit 2."""

import json
import math

import pandas as pd
import pytest

from bench import cli
from bench.results import store
from bench.results import export
from bench.results.report import load

SOURCES = ("tests/fixtures/results_synthetic.jsonl", "tests/fixtures/results_v2.jsonl")


@pytest.fixture(autouse=True)
def export_only(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", {"export": "bench.results.export"})


def missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def prune(value):
    """A record as an export can hold it: no nulls, no empty objects (both mean 'not measured')."""
    if isinstance(value, dict):
        kept = {k: prune(v) for k, v in value.items() if not missing(v)}
        return {k: v for k, v in kept.items() if v != {}}
    return value


def unflatten(row: dict, json_cols: set) -> dict:
    out = {}
    for column, value in row.items():
        if column == "source" or missing(value):
            continue
        *parents, leaf = column.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = json.loads(value) if column in json_cols else value
    return out


def read_back(path, fmt, wide):
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "jsonl":
        return pd.DataFrame([json.loads(line) for line in path.read_text().splitlines()])
    # CSV holds text: read it as text, then convert with the types the frame had (as a user's schema would)
    text = pd.read_csv(path, dtype=str, keep_default_na=False)
    out = pd.DataFrame(index=text.index)
    for column in text.columns:
        kinds = {type(v) for v in wide[column] if not missing(v)}
        convert = (lambda s: s == "True") if kinds == {bool} else float if kinds <= {int, float} else str
        out[column] = [None if cell == "" else convert(cell) for cell in text[column]]
    return out


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_export_round_trips_to_the_records(tmp_path, fmt):
    out = tmp_path / f"runs.{fmt}"
    assert cli.main(["export", *SOURCES, "--format", fmt, "--out", str(out), "--label", "v1", "--label", "v2"]) == 0
    records = [r for source in SOURCES for r in store.read(source)[0]]
    wide = load.combine([load.frame(store.read(s)[0], source=label) for s, label in zip(SOURCES, ("v1", "v2"))])
    json_cols = set(export.json_columns(wide))
    assert {"loss", "throughput.step_times_s", "heldout.losses", "heldout.ids"} <= json_cols
    back = read_back(out, fmt, wide)
    assert list(back.columns) == list(wide.columns) and len(back) == len(records)
    assert back["source"].tolist() == ["v1"] * 5 + ["v2"] * 11
    for row, record in zip(back.to_dict(orient="records"), records):
        assert unflatten(row, json_cols) == prune(record)


def test_columns_are_dotted_paths_with_v2_blocks_and_v1_left_empty(tmp_path):
    out = tmp_path / "runs.parquet"
    assert cli.main(["export", SOURCES[0], SOURCES[1], "--out", str(out)]) == 0  # format from the suffix
    back = pd.read_parquet(out)
    for column in ("memory.train.peak_bytes", "mmlu.categories.stem", "mmlu.subjects.anatomy",
                   "tasks.ftbench_arc_easy.acc", "heldout.loss", "seed", "precision.policy", "data.fingerprint"):
        assert column in back.columns
    v1 = back[back["schema_version"] == 2].head(5)  # the v1 file, upgraded on read: v2 blocks not measured
    assert v1["heldout.loss"].isna().all() and v1["tasks.ftbench_arc_easy.acc"].isna().all()
    for parent in ("throughput", "heldout", "data", "precision"):  # null in some records: the leaves say it
        assert parent not in back.columns


@pytest.mark.parametrize("args, message", [
    (["--format", "xls"], "unknown export format 'xls'; valid choices: csv, parquet, jsonl"),
    (["--out", "/proc/ftbench-no/runs.csv"], "cannot write export to /proc/ftbench-no/runs.csv"),
    (["--out", "OUTDIR"], "is a directory; name a file"),
])
def test_bad_input_is_one_line_exit_2_and_no_file(tmp_path, capsys, args, message):
    args = [str(tmp_path) if a == "OUTDIR" else a for a in args]
    assert cli.main(["export", SOURCES[0], *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("ftbench: error: ") and message in err
    assert list(tmp_path.iterdir()) == []  # nothing half-written

