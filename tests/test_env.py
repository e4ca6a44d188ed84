"""The git state a record carries: the commit, and whether tracked files differed from it."""

import subprocess

import pytest

from bench.measure import env


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    git(tmp_path, "init", "-q")
    (tmp_path / "tracked.py").write_text("x = 1\n")
    git(tmp_path, "add", "tracked.py")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    monkeypatch.setattr(env, "REPO_ROOT", tmp_path)
    return tmp_path


def head(repo) -> str:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def test_a_clean_checkout_is_not_dirty(repo):
    assert env.git_state() == {"git_sha": head(repo), "git_dirty": False}


def test_a_changed_tracked_file_is_dirty(repo):
    (repo / "tracked.py").write_text("x = 2\n")
    assert env.git_state() == {"git_sha": head(repo), "git_dirty": True}


def test_a_staged_change_is_dirty_and_an_untracked_file_is_not(repo):
    (repo / "results.jsonl").write_text("{}\n")  # outputs beside the code do not make it dirty
    assert env.git_state()["git_dirty"] is False
    (repo / "new.py").write_text("y = 1\n")
    git(repo, "add", "new.py")
    assert env.git_state()["git_dirty"] is True


def test_outside_a_repository_both_are_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(env, "REPO_ROOT", tmp_path)
    assert env.git_state() == {"git_sha": None, "git_dirty": None}
