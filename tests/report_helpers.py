"""Shared helpers for the report tests (no tests here): fixture records, variants, reading a built page."""

import copy
import json
import re
from pathlib import Path

FIXTURE = Path("tests/fixtures/results_synthetic.jsonl")
XSS_MODEL = '</script><script>window.ftbenchErrors.push("injected")</script>'


def fixture_records() -> list:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


def write_results(directory: Path, records: list) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return directory


def varied(n: int) -> list:
    """n records made by varying the fixture's: models, memory, accuracy, params, estimates."""
    base = fixture_records()
    out = []
    for i in range(n):
        record = copy.deepcopy(base[i % len(base)])
        record["run_id"] = f"{record['run_id']}-{i}"
        record["model"] = f"model-{i % 7}"
        if record["status"] == "ok":
            record["memory"]["train"]["peak_bytes"] = int(record["memory"]["train"]["peak_bytes"] * (1 + i / 100))
            record["mmlu"]["acc"] = round(0.25 + (i * 37 % 100) / 1000, 4)
            if record["params"]["trainable"]:
                record["params"]["trainable"] = max(1000, record["params"]["trainable"] // (1 + i % 50))
            predicted = int(record["memory"]["train"]["peak_bytes"] * 1.1)
            record["estimate"] = {"total_bytes": predicted, "terms": {}, "error_pct": 10.0}
        out.append(record)
    return out


def page_options(index: Path) -> dict:
    """The chart options exactly as the page embeds them."""
    match = re.search(r'<script type="application/json" id="ftbench-options">(.*?)</script>',
                      index.read_text(encoding="utf-8"), re.S)
    return json.loads(match.group(1))


def two_models() -> list:
    """The fixture's runs twice: as smollm2-135m and as phi3-mini, the second at other figures."""
    out = fixture_records()
    for record in fixture_records():
        record = copy.deepcopy(record)
        record["model"] = "phi3-mini"
        record["run_id"] = record["run_id"].replace("smollm2-135m", "phi3-mini")
        if record["status"] == "ok":
            record["memory"]["train"]["peak_bytes"] *= 20
            record["mmlu"]["acc"] = round(min(1.0, record["mmlu"]["acc"] + 0.2), 4)
        out.append(record)
    return out
