"""Stage: ``<binary>.sha256``, ``SHA256SUMS`` and ``manifest.json`` (SPEC §4)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .build import BuildInfo
from .context import ReleaseContext
from .errors import KmError
from .hashing import digest_file
from .layout import MANIFEST, SUMS, extra_files, sha256_name, write_if_changed
from .matrix import Target
from .urlspace import Kind, key_of

SCHEMA = 1


def sha256_line(hexdigest: str, name: str) -> str:
    """One line in ``sha256sum -c`` format: hex, two spaces, name."""
    return f"{hexdigest}  {name}\n"


def manifest_document(info: BuildInfo, artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "version": info.version,
        "commit": info.commit,
        "date": info.date,
        "go": info.go,
        "artifacts": artifacts,
    }


def render_manifest(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2) + "\n"


def write_checksums(ctx: ReleaseContext, *, targets: Sequence[Target] | None = None) -> int:
    """Write the checksum files and the manifest into ``ctx.dist``; the bytes written (0: nothing changed)."""
    dist = ctx.dist
    targets = ctx.build.targets if targets is None else targets
    reporter = ctx.reporter
    info = BuildInfo.load(dist)
    names = {t: ctx.file_name(t) for t in targets}
    missing = [n for n in names.values() if not (dist / n).is_file()]
    if missing:
        raise KmError(
            f"{dist} is incomplete: missing {', '.join(missing)} (run `inv build --version {dist.name}`)"
        )
    reporter.step(f"checksums and manifest for {info.version}")
    artifacts: list[dict[str, Any]] = []
    sums: dict[str, str] = {}
    for t, name in names.items():
        d = digest_file(dist / name)
        sums[name] = d.sha256
        artifacts.append(
            {
                "os": t.os,
                "arch": t.arch,
                "name": name,
                "size": d.size,
                "sha256": d.sha256,
                "path": key_of(Kind.VERSIONED, version=info.version, file=name),
            }
        )
    outputs = {sha256_name(name): sha256_line(h, name) for name, h in sums.items()}
    listed = {**sums, **{p.name: digest_file(p).sha256 for p in extra_files(dist)}}
    outputs[SUMS] = "".join(sha256_line(listed[n], n) for n in sorted(listed))
    outputs[MANIFEST] = render_manifest(manifest_document(info, artifacts))
    if ctx.dry_run:
        for name in outputs:
            reporter.info(f"would write {dist / name}")
        return 0
    written = sum(write_if_changed(dist / name, text) for name, text in outputs.items())
    reporter.info(f"{len(outputs)} files, {written} bytes rewritten")
    return written
