import json

import pytest

from bench.results import store
from bench.results.schema import SCHEMA_VERSION, problems
from bench.util.errors import BenchError

FIXTURE = "tests/fixtures/results_synthetic.jsonl"


def test_append_then_read_round_trips(tmp_path):
    records, _ = store.read(FIXTURE)
    for record in records:
        store.append(tmp_path, record)
    again, bad = store.read(tmp_path)
    assert again == records and bad == []


def test_corrupt_line_is_named_by_number(tmp_path):
    lines = open(FIXTURE).read().splitlines()
    lines.insert(2, '{"schema_version": 1, "run_id": ')
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchError, match=r"results.jsonl:3: corrupt line"):
        store.read(tmp_path)
    records, bad = store.read(tmp_path, skip_bad_lines=True)
    assert len(records) == len(lines) - 1 and len(bad) == 1


def test_newer_schema_is_refused_even_when_skipping(tmp_path):
    record = json.loads(open(FIXTURE).readline())
    record["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / "results.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(BenchError, match="newer than this ftbench"):
        store.read(tmp_path, skip_bad_lines=True)


def test_missing_and_empty_sources(tmp_path):
    with pytest.raises(BenchError, match="no results file"):
        store.read(tmp_path)
    (tmp_path / "results.jsonl").write_text("")
    with pytest.raises(BenchError, match="holds no records"):
        store.read(tmp_path)


def test_fixture_records_follow_the_schema():
    records, _ = store.read(FIXTURE)
    assert all(problems(r) == [] for r in records)
    broken = dict(records[0], status="exploded")
    assert problems(broken)
