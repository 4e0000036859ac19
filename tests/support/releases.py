"""Real releases for tests: built with the pinned Go by the engine itself, once per session.

Also the release context of tests: this checkout's own configuration (``PROJECT``),
moved onto a temporary root when a test brings its own install scripts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kmrelease.artifacts import Release, load_release
from kmrelease.build import build
from kmrelease.checksums import write_checksums
from kmrelease.config import ProjectConfig, load_project
from kmrelease.context import ReleaseContext
from kmrelease.destinations import Destination
from kmrelease.publish import Outcome, promote_version, publish_release
from kmrelease.ui import Reporter
from kmrelease.urlspace import Kind
from kmrelease.version import Version, parse_version

ROOT = Path(__file__).resolve().parents[2]  # this checkout
PROJECT = load_project(cwd=ROOT, environ={})
QUIET = Reporter(quiet=True)

SETTINGS_SH = """# --- release settings (rewritten by the engine when it publishes this script) ---
BINARY_NAME="km"
GITHUB_REPOSITORY="kilometers-ai/kilometers-cli"
DEFAULT_BASE_URL="https://get.kilometers.ai"
KEY_PRINCIPAL="release@get.kilometers.ai"
TRUSTED_KEYS=""
TRUSTED_SSH_KEYS=""
# --- end of release settings ---
"""
SETTINGS_PS1 = """# --- release settings (rewritten by the engine when it publishes this script) ---
$BinaryName = "km"
$GithubRepository = "kilometers-ai/kilometers-cli"
$DefaultBaseUrl = "https://get.kilometers.ai"
$KeyPrincipal = "release@get.kilometers.ai"
$TrustedKeys = @"
"@
# --- end of release settings ---
"""


def context(
    version: str | Version,
    dist_root: Path,
    *,
    project: ProjectConfig = PROJECT,
    reporter: Reporter = QUIET,
    **kw: Any,
) -> ReleaseContext:
    v = version if isinstance(version, Version) else parse_version(version)
    return ReleaseContext(project, v, reporter, dist_root, **kw)


def build_release(version: str, dist_root: Path) -> Release:
    """Build every target of the matrix into ``dist_root/<version>/`` and load the release."""
    ctx = context(version, dist_root)
    build(ctx)
    write_checksums(ctx)
    return load_release(ctx)


def project_at(root: Path, base: ProjectConfig = PROJECT, **changes: Any) -> ProjectConfig:
    """This checkout's configuration on another root (whose ``scripts/`` a test wrote)."""
    return dataclasses.replace(base, root=root, **changes)


def publish(
    rel: Release,
    dest: Destination,
    reporter: Reporter = QUIET,
    *,
    scripts: Path,
    documents: Mapping[Kind, bytes] | None = None,
    **flags: Any,
) -> Outcome:
    """``publish_release`` with the install scripts of ``scripts`` (a ``<root>/scripts`` directory)."""
    dist_root = rel.files[0].path.parent.parent
    ctx = context(rel.version, dist_root, project=project_at(scripts.parent), reporter=reporter, dest=dest)
    return publish_release(ctx.replace(**flags), rel, documents=documents)


def promote(
    dest: Destination, version: Version, reporter: Reporter = QUIET, *, scripts: Path, **flags: Any
) -> Outcome:
    """``promote_version`` with the install scripts of ``scripts``."""
    ctx = context(
        version, scripts.parent / "dist", project=project_at(scripts.parent), reporter=reporter, dest=dest
    )
    return promote_version(ctx.replace(**flags))


def write_scripts(directory: Path) -> Path:
    """Stand-in install scripts (with their release settings) for tests whose subject is not the scripts."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "install.sh").write_text("#!/bin/sh\n" + SETTINGS_SH + "echo test installer\n")
    (directory / "install.ps1").write_text(SETTINGS_PS1 + "Write-Host 'test installer'\n")
    return directory
