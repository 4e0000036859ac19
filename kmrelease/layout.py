"""Where things live on disk: the repository, ``dist/<version>/``, the local site."""

from __future__ import annotations

import os
from pathlib import Path

from .config import ROOT

DIST = Path(os.environ.get("KM_DIST_DIR") or ROOT / "dist").absolute()
SCRIPTS = ROOT / "scripts"
DEFAULT_SITE = ROOT / "site"
BUILD_META = ".build"  # dist/<v>/.build/: stamps and build info, never published

SUMS = "SHA256SUMS"
MANIFEST = "manifest.json"


# Folders of dist/<v>/ whose files are published beside the binaries (flat, under
# releases/<v>/) and listed in SHA256SUMS: the packages stage writes packages/.
EXTRA_DIRS: tuple[str, ...] = ("packages", "sbom")  # sbom: kmrelease.sbom.SBOM_DIR


def extra_files(dist: Path) -> list[Path]:
    """The published files of the :data:`EXTRA_DIRS` of ``dist``, sorted by name."""
    found = [
        p
        for d in EXTRA_DIRS
        if (dist / d).is_dir()
        for p in (dist / d).iterdir()
        if p.is_file() and not p.name.startswith(".")
    ]
    return sorted(found, key=lambda p: p.name)


def dist_dir(version: str, root: Path | None = None) -> Path:
    return (root or DIST) / version


def site_dir(site: str | None = None) -> Path:
    return Path(site or os.environ.get("KM_SITE_DIR") or DEFAULT_SITE).absolute()


def sha256_name(binary: str) -> str:
    return binary + ".sha256"


def write_if_changed(path: Path, text: str) -> int:
    """Replace ``path`` atomically with ``text`` unless it already holds it; the bytes written."""
    data = text.encode()
    if path.exists() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return 0
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return len(data)
