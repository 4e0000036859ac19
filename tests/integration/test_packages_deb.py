"""The .deb packages and the packages stage, with dpkg-deb, lintian and real km builds."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from kmrelease.artifacts import Release, load_release
from kmrelease.checksums import write_checksums
from kmrelease.layout import SUMS
from kmrelease.packages.deb import DebSpec, build_deb
from kmrelease.packages.settings import PackageSettings
from kmrelease.packages.stage import make_packages
from kmrelease.ui import Reporter
from tests.support.releases import context

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")
QUIET = Reporter(quiet=True)


def _spec(version: str = "v1.0.0", debver: str = "1.0.0") -> DebSpec:
    return DebSpec(PackageSettings(), debver, "amd64", 1764547200, version)


@needs_dpkg
def test_two_builds_give_identical_deb_bytes(tmp_path: Path) -> None:
    binary = tmp_path / "km"
    binary.write_bytes(b"\x7fELF" + os.urandom(1 << 16))
    outs = []
    old = os.umask(0o022)
    try:
        for n, mask in ((1, 0o022), (2, 0o077)):
            os.umask(mask)
            os.utime(binary, (1_000_000 * n, 1_000_000 * n))  # the clock plays no part
            dist, out = tmp_path / f"dist{n}", tmp_path / f"out{n}"
            out.mkdir()
            path, written = build_deb(_spec(), binary, dist, out)
            assert written
            outs.append(path.read_bytes())
    finally:
        os.umask(old)
    assert outs[0] == outs[1]
    listing = subprocess.run(
        ["dpkg-deb", "--contents", str(tmp_path / "out1" / "kilometers-cli_1.0.0_amd64.deb")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "root/root" in listing and "./usr/bin/km" in listing
    assert all(" 2025-12-01 00:00 " in line for line in listing.splitlines()), listing  # the commit date


@needs_dpkg
def test_an_unchanged_deb_is_not_rewritten(tmp_path: Path) -> None:
    binary = tmp_path / "km"
    binary.write_bytes(b"\x7fELF" + os.urandom(4096))
    out = tmp_path / "out"
    out.mkdir()
    path, written = build_deb(_spec(), binary, tmp_path / "dist", out)
    mtime = path.stat().st_mtime_ns
    assert written
    assert build_deb(_spec(), binary, tmp_path / "dist", out) == (path, False)
    assert path.stat().st_mtime_ns == mtime


@needs_dpkg
def test_control_fields(tmp_path: Path) -> None:
    binary = tmp_path / "km"
    binary.write_bytes(b"\x7fELF" + b"\0" * 5000)
    (tmp_path / "out").mkdir()
    path, _ = build_deb(_spec("v1.3.0-rc.1", "1.3.0~rc.1"), binary, tmp_path / "d", tmp_path / "out")
    assert path.name == "kilometers-cli_1.3.0~rc.1_amd64.deb"
    fields = subprocess.run(
        ["dpkg-deb", "--field", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "Package: kilometers-cli\nVersion: 1.3.0~rc.1\nArchitecture: amd64\n" in fields
    assert "Installed-Size: " in fields and "Description: Kilometers CLI" in fields


@pytest.mark.slow
@needs_dpkg
def test_packages_stage_on_a_real_release(release_v1: Release, copy_dist: Callable[[Release], Path]) -> None:
    """Ten package builds, two lintian-clean .debs, the manifests; a second run writes nothing."""
    dist = copy_dist(release_v1)
    ctx = context(release_v1.version, dist.parent)
    first = make_packages(ctx)
    assert "kilometers-cli_1.0.0_amd64.deb" in first.files and "km-darwin-arm64-brew" in first.files
    assert "km.rb" in first.files and "km.json" in first.files and len(first.files) == 23
    again = make_packages(ctx)
    assert again.written == [] and again.removed == []
    # the checksum stage lists the package files, and the release loads them
    write_checksums(ctx)
    sums = (dist / SUMS).read_text()
    assert "  kilometers-cli_1.0.0_arm64.deb\n" in sums and "  km-windows-arm64-winget.exe\n" in sums
    rel = load_release(ctx)
    assert {"km.rb", "KilometersAI.km.installer.yaml"} <= set(rel.names)
    deb = dist / "packages" / "kilometers-cli_1.0.0_amd64.deb"
    proc = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True
    )  # the binary inside is the apt package build
    assert len(proc.stdout) > 1_000_000
    if shutil.which("lintian"):
        lint = subprocess.run(
            ["lintian", "--fail-on", "error,warning", "--pedantic", "-I", str(deb)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        tags = [ln for ln in lint.stdout.splitlines() if ln[:2] in ("E:", "W:", "I:", "P:")]
        assert lint.returncode == 0 and not tags, lint.stdout + lint.stderr
