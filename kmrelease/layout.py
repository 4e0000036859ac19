"""Where things live on disk, relative to the project root (never the engine's install location).

``dist/<version>/`` is :attr:`kmrelease.context.ReleaseContext.dist`; the local site is
:func:`site_dir`; the install scripts are :func:`script_path` (the repository's own
``scripts/`` when present, else the copies shipped with the engine).
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import ProjectConfig
from .errors import KmError

BUILD_META = ".build"  # dist/<v>/.build/: stamps and build info, never published
SITE_ENV = "KM_SITE_DIR"
SCRIPT_NAMES = ("install.sh", "install.ps1")
ENGINE_SCRIPTS = Path(__file__).resolve().parent / "scripts"

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


def site_dir(project: ProjectConfig, site: str | None = None) -> Path:
    """``--site``, else ``$KM_SITE_DIR``, else ``<root>/site``."""
    chosen = site or os.environ.get(SITE_ENV)
    return (Path(chosen) if chosen else project.root / "site").absolute()


def script_path(project: ProjectConfig, name: str) -> Path:
    """An install script: ``<root>/scripts/<name>`` when the repository has one, else the engine's."""
    own = project.root / "scripts" / name
    if own.is_file():
        return own
    shipped = ENGINE_SCRIPTS / name
    if shipped.is_file():
        return shipped
    raise KmError(f"install script {name} is missing: neither {own} nor the engine's {shipped} exists")


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
