from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kmrelease.errors import KmError
from kmrelease.gitinfo import source_info


def test_date_is_the_commit_date_not_the_clock(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": "2024-02-03T04:05:06Z",
        "GIT_COMMITTER_DATE": "2024-02-03T04:05:06Z",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
    }
    (tmp_path / "go.mod").write_text("module x\n")
    for cmd in (["init", "-q"], ["add", "go.mod"], ["commit", "-qm", "x"]):
        subprocess.run(["git", *cmd], cwd=tmp_path, env=env, check=True)
    info = source_info(tmp_path)
    assert info.date == "2024-02-03T04:05:06Z" and info.commit and len(info.commit) == 40 and not info.dirty
    (tmp_path / "go.mod").write_text("module y\n")
    assert source_info(tmp_path).dirty


def test_outside_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    info = source_info(tmp_path)
    assert (info.commit, info.date, info.note) == (None, "2023-11-14T22:13:20Z", None)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(KmError, match="SOURCE_DATE_EPOCH must be seconds"):
        source_info(tmp_path)
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    (tmp_path / "main.go").write_text("package main\n")
    os.utime(tmp_path / "main.go", (1600000000, 1600000000))
    info = source_info(tmp_path)
    assert info.date == "2020-09-13T12:26:40Z" and info.note and "not a git checkout" in info.note
