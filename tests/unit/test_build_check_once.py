"""The build's binary check runs once per exact bytes and expected line (kmrelease.build.check_once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmrelease import build as gobuild
from kmrelease.build import BuildInfo, Built, check_once, recipe
from kmrelease.config import load_project
from kmrelease.context import ReleaseContext
from kmrelease.matrix import Target
from kmrelease.ui import Reporter
from kmrelease.version import parse_version
from tests.support.releases import ROOT

T = Target("linux", "amd64")


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The version line each real check was asked to see."""
    seen: list[str] = []
    monkeypatch.setattr(gobuild, "check_binary", lambda ctx, path, r, info: seen.append(r.version_line))
    return seen


def _ctx(tmp_path: Path) -> ReleaseContext:
    project = load_project(cwd=ROOT)
    return ReleaseContext.create(project, parse_version("v1.2.3"), Reporter(quiet=True), dist_root=tmp_path)


def test_the_same_bytes_and_line_are_checked_once(tmp_path: Path, checks: list[str]) -> None:
    ctx, info = _ctx(tmp_path), BuildInfo("v1.2.3", "abc", "2026-01-01T00:00:00Z", "go1.27.3")
    r, built = recipe(ctx, info, T), Built(T, tmp_path / "km-linux-amd64", "1" * 64, rebuilt=False)
    assert check_once(ctx, built, r, info, tmp_path) is False
    assert check_once(ctx, built, r, info, tmp_path) is True  # skipped: said on the stage's line
    assert checks == [r.version_line]


def test_other_bytes_or_another_expected_line_are_checked_again(tmp_path: Path, checks: list[str]) -> None:
    ctx, info = _ctx(tmp_path), BuildInfo("v1.2.3", "abc", "2026-01-01T00:00:00Z", "go1.27.3")
    r, built = recipe(ctx, info, T), Built(T, tmp_path / "km-linux-amd64", "1" * 64, rebuilt=False)
    check_once(ctx, built, r, info, tmp_path)
    assert check_once(ctx, Built(T, built.path, "2" * 64, rebuilt=True), r, info, tmp_path) is False
    later = BuildInfo("v1.2.3", "def", "2026-01-02T00:00:00Z", "go1.27.3")
    assert check_once(ctx, built, recipe(ctx, later, T), later, tmp_path) is False
    assert len(checks) == 3 and "def" in checks[-1]


def test_a_failed_check_is_not_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, info = _ctx(tmp_path), BuildInfo("v1.2.3", "abc", "2026-01-01T00:00:00Z", "go1.27.3")
    r, built = recipe(ctx, info, T), Built(T, tmp_path / "km-linux-amd64", "1" * 64, rebuilt=False)

    def fail(*_: object) -> None:
        raise gobuild.KmError("km-linux-amd64: printed 'x'")

    monkeypatch.setattr(gobuild, "check_binary", fail)
    for _ in range(2):
        with pytest.raises(gobuild.KmError, match="printed 'x'"):
            check_once(ctx, built, r, info, tmp_path)
    assert not (tmp_path / "km-linux-amd64.checked").exists()
