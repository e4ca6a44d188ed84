"""`run --dry-run`: the matrix, its resolved settings and the planner's memory and time, then exit 0
without training (bench.run.dry_run)."""

from tests.conftest import run_cli


def test_dry_run_prints_the_matrix_and_trains_nothing(tmp_path):
    out = tmp_path / "out"
    done = run_cli("run", "--models", "tiny-llama", "--methods", "base", "lora", "--dry-run", "--max-memory", "4GiB",
                   "--out", str(out), timeout=300)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[1]: line for line in done.stdout.splitlines() if line.startswith("tiny-llama")}
    assert set(rows) == {"base", "lora"}
    for row in rows.values():
        assert "cpu" in row and "4.00 GiB" in row and "mmlu" in row
        assert row.split()[-1][0].isdigit()  # an estimated time, not "?"
    assert "estimated total:" in done.stdout
    assert not out.exists()  # nothing ran, nothing written
