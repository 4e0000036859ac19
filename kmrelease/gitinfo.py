"""Commit and commit date: the build date comes from the commit, never the clock."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .errors import KmError


@dataclass(frozen=True)
class SourceInfo:
    commit: str | None  # full sha, None outside a git checkout
    date: str  # RFC 3339 UTC: 2026-11-26T14:47:00Z
    dirty: bool


def _rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.strip()


def source_info(root: Path) -> SourceInfo:
    """The commit of ``root`` and its committer date; ``SOURCE_DATE_EPOCH`` outside git."""
    commit = _git(root, "rev-parse", "--verify", "HEAD")
    if commit:
        epoch = int(_git(root, "log", "-1", "--format=%ct", "HEAD") or "0")
        status = _git(root, "status", "--porcelain", "--untracked-files=no", "--", ".")
        return SourceInfo(commit, _rfc3339(epoch), bool(status))
    sde = os.environ.get("SOURCE_DATE_EPOCH", "")
    if not sde.isdigit():
        raise KmError(f"{root} is not a git checkout with a commit: set SOURCE_DATE_EPOCH to date the build")
    return SourceInfo(None, _rfc3339(int(sde)), False)
