"""``inv release --prebuilt DIR``: a release assembled from split CI builds is checked before publishing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kmrelease.artifacts import Release, load_release
from kmrelease.checksums import write_checksums
from kmrelease.errors import KmError
from kmrelease.prebuilt import assemble as run_assemble
from tests.support.releases import PROJECT, context


def assemble(src: Path, version: str, *, check_reproducible: bool = False, dry_run: bool = False) -> Path:
    ctx = context(version, src.parent / "dist", dry_run=dry_run)
    return run_assemble(ctx, src, check_reproducible=check_reproducible)


@pytest.fixture
def downloads(tmp_path: Path, release_v1: Release) -> Path:
    """The layout of actions/download-artifact: one folder per artifact."""
    root = tmp_path / "artifacts"
    for name in PROJECT.build.file_names:
        folder = root / name.removesuffix(".exe")
        folder.mkdir(parents=True)
        shutil.copy2(release_v1.files[0].path.parent / name, folder / name)
    return root


def test_complete_prebuilt_set_is_assembled(downloads: Path, tmp_path: Path, release_v1: Release) -> None:
    dist = assemble(downloads, "v1.0.0")
    assert dist == tmp_path / "dist" / "v1.0.0"
    ctx = context("v1.0.0", tmp_path / "dist")
    write_checksums(ctx)
    rel = load_release(ctx)
    assert rel.manifest["artifacts"] == release_v1.manifest["artifacts"]


def test_missing_binary_is_refused(downloads: Path, tmp_path: Path) -> None:
    shutil.rmtree(downloads / "km-windows-arm64")
    with pytest.raises(KmError, match="is incomplete: missing km-windows-arm64.exe"):
        assemble(downloads, "v1.0.0")
    assert not (tmp_path / "dist").exists()


def test_wrong_cpu_is_refused(downloads: Path) -> None:
    amd = downloads / "km-darwin-amd64" / "km-darwin-amd64"
    shutil.copy2(amd, downloads / "km-darwin-arm64" / "km-darwin-arm64")
    with pytest.raises(
        KmError, match="km-darwin-arm64: expected a macho/arm64 executable, found macho/amd64"
    ):
        assemble(downloads, "v1.0.0")


def test_binary_of_another_version_is_refused(downloads: Path) -> None:
    with pytest.raises(KmError, match="the version v1.0.1 was not injected"):
        assemble(downloads, "v1.0.1")


def test_conflicting_copies_are_refused(downloads: Path) -> None:
    extra = downloads / "again"
    extra.mkdir()
    (extra / "km-linux-amd64").write_bytes(b"\x7fELF other")
    with pytest.raises(KmError, match="holds different copies of km-linux-amd64"):
        assemble(downloads, "v1.0.0")


def test_check_reproducible(downloads: Path) -> None:
    assemble(downloads, "v1.0.0", check_reproducible=True, dry_run=True)
    with (downloads / "km-linux-amd64" / "km-linux-amd64").open("ab") as fh:
        fh.write(b"\0")  # still a working binary that reports the right version, but not the same bytes
    with pytest.raises(KmError, match="prebuilt binaries differ from a local rebuild: km-linux-amd64"):
        assemble(downloads, "v1.0.0", check_reproducible=True)


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(KmError, match="is not a directory"):
        assemble(tmp_path / "none", "v1.0.0")
