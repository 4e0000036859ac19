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
    note: str | None = None  # how the date was found when not from a commit


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
    if sde:
        if not sde.isdigit():
            raise KmError(f"SOURCE_DATE_EPOCH must be seconds since 1970, not {sde!r}")
        return SourceInfo(None, _rfc3339(int(sde)), False)
    sources = [p for p in root.rglob("*.go") if ".venv" not in p.parts and ".nox" not in p.parts]
    sources += [root / "go.mod"]
    newest = max((int(p.stat().st_mtime) for p in sources if p.exists()), default=0)
    note = (
        f"{root} is not a git checkout: the build is dated by its newest Go source file "
        "(set SOURCE_DATE_EPOCH for byte-identical builds elsewhere)"
    )
    return SourceInfo(None, _rfc3339(newest), False, note)
