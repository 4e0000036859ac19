"""Real releases for tests: built with the pinned Go by the engine itself, once per session."""

from __future__ import annotations

from pathlib import Path

from kmrelease.artifacts import Release, load_release
from kmrelease.build import build
from kmrelease.checksums import write_checksums
from kmrelease.layout import dist_dir
from kmrelease.matrix import TARGETS
from kmrelease.ui import Reporter
from kmrelease.version import parse_version


def build_release(version: str, out_root: Path) -> Release:
    """Build every target of the matrix into ``out_root/<version>/`` and load the release."""
    v = parse_version(version)
    quiet = Reporter(quiet=True)
    build(v, TARGETS, quiet, out_root=out_root)
    write_checksums(dist_dir(version, out_root), quiet)
    return load_release(dist_dir(version, out_root), v)


def write_scripts(directory: Path) -> Path:
    """Stand-in install scripts for publishing tests whose subject is not the scripts."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "install.sh").write_text("#!/bin/sh\necho test installer\n")
    (directory / "install.ps1").write_text("Write-Host 'test installer'\n")
    return directory
