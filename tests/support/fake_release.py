"""A fake-but-valid ``dist/<version>/`` (six "binaries", checksums, manifest) that ``load_release`` accepts.

The binaries are seeded random bytes, so two versions differ and the same
version built twice is byte-identical (as the real build is).
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from kmrelease.artifacts import Release, load_release
from kmrelease.layout import MANIFEST, SUMS, sha256_name
from kmrelease.urlspace import Kind, key_of
from tests.support.releases import PROJECT, SETTINGS_PS1, SETTINGS_SH, context

TARGETS = PROJECT.build.targets
NAMES = {t: PROJECT.build.file_name(t) for t in TARGETS}
DEFAULT_SIZES = {NAMES[t]: 96 * 1024 + i * 4096 for i, t in enumerate(TARGETS)}


def make_dist(
    root: Path,
    version: str,
    *,
    sizes: dict[str, int] | None = None,
    salt: str = "",
) -> Release:
    """Write a complete release for ``version`` under ``root/version`` and load it."""
    dist = root / version
    dist.mkdir(parents=True, exist_ok=True)
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    artifacts = []
    sums = {}
    for t, name in NAMES.items():
        rng = random.Random(f"{version}/{name}/{salt}")
        data = rng.randbytes(sizes[name])
        (dist / name).write_bytes(data)
        h = hashlib.sha256(data).hexdigest()
        sums[name] = h
        (dist / sha256_name(name)).write_text(f"{h}  {name}\n")
        artifacts.append(
            {
                "os": t.os,
                "arch": t.arch,
                "name": name,
                "size": len(data),
                "sha256": h,
                "path": key_of(Kind.VERSIONED, version=version, file=name),
            }
        )
    (dist / SUMS).write_text("".join(f"{sums[n]}  {n}\n" for n in sorted(sums)))
    manifest = {
        "schema": 1,
        "version": version,
        "commit": None,
        "date": "2026-01-01T00:00:00Z",
        "go": "go1.27.3",
        "artifacts": artifacts,
    }
    (dist / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return load_release(context(version, root))


def make_scripts(root: Path, marker: str = "1") -> Path:
    scripts = root / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    sh = f'#!/bin/sh\n# fake installer {marker}\n{SETTINGS_SH}main() {{ :; }}\nmain "$@"\n'
    (scripts / "install.sh").write_text(sh)
    (scripts / "install.ps1").write_text(f"# fake installer {marker}\n{SETTINGS_PS1}Write-Output 'km'\n")
    return scripts
