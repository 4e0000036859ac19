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
from kmrelease.matrix import TARGETS
from kmrelease.urlspace import Kind, key_of

DEFAULT_SIZES = {t.filename: 96 * 1024 + i * 4096 for i, t in enumerate(TARGETS)}


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
    for t in TARGETS:
        rng = random.Random(f"{version}/{t.filename}/{salt}")
        data = rng.randbytes(sizes[t.filename])
        (dist / t.filename).write_bytes(data)
        h = hashlib.sha256(data).hexdigest()
        sums[t.filename] = h
        (dist / sha256_name(t.filename)).write_text(f"{h}  {t.filename}\n")
        artifacts.append(
            {
                "os": t.os,
                "arch": t.arch,
                "name": t.filename,
                "size": len(data),
                "sha256": h,
                "path": key_of(Kind.VERSIONED, version=version, file=t.filename),
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
    return load_release(dist, version)


def make_scripts(root: Path, marker: str = "1") -> Path:
    scripts = root / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    (scripts / "install.sh").write_text(f'#!/bin/sh\n# fake installer {marker}\nmain() {{ :; }}\nmain "$@"\n')
    (scripts / "install.ps1").write_text(f"# fake installer {marker}\nWrite-Output 'km'\n")
    return scripts
