"""A release's file set, loaded from ``dist/<version>/`` and checked for completeness."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import BuildConfig
from .context import ReleaseContext
from .errors import KmError
from .hashing import FileDigest, digest_file
from .layout import MANIFEST, SUMS, extra_files, sha256_name
from .sign.statement import SIGNATURE_FILES
from .urlspace import Kind, key_of
from .version import Version


@dataclass(frozen=True)
class ReleaseFile:
    name: str
    path: Path
    digest: FileDigest


@dataclass(frozen=True)
class Release:
    version: Version
    manifest: dict[str, Any]
    files: tuple[ReleaseFile, ...]  # binaries, .sha256 files, SHA256SUMS, its signatures, manifest.json

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.files]


def release_file_names(
    binaries: list[str], extras: list[str] | None = None, *, signed: bool = False
) -> list[str]:
    """Every file of a release in publishing order: binaries, their .sha256, the extra files
    (packages), sums (and its signatures), manifest last."""
    return [
        *binaries,
        *(sha256_name(b) for b in binaries),
        *(extras or []),
        SUMS,
        *(SIGNATURE_FILES if signed else ()),
        MANIFEST,
    ]


_SUMS_LINE = re.compile(r"([0-9a-fA-F]{64})  ([A-Za-z0-9][A-Za-z0-9._+~-]*)", re.ASCII)
MAX_SUMS_LINES = 1000


def parse_sums(text: str) -> dict[str, str]:
    """A ``SHA256SUMS`` body, strictly: ``<64 hex>  <file name>`` lines, each ending in a newline,
    no duplicates; hashes returned in lower case. Anything else is a ValueError."""
    if not text or not text.endswith("\n"):
        raise ValueError("empty, or the last line does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) > MAX_SUMS_LINES:
        raise ValueError(f"more than {MAX_SUMS_LINES} lines")
    out: dict[str, str] = {}
    for line in lines:
        m = _SUMS_LINE.fullmatch(line)
        if not m:
            raise ValueError(f"malformed checksum line {line[:80]!a}")
        if m.group(2) in out:
            raise ValueError(f"{m.group(2)} is listed twice")
        out[m.group(2)] = m.group(1).lower()
    return out


def check_manifest(doc: Any, version: Version, build: BuildConfig) -> list[dict[str, Any]]:
    """The artifacts of a manifest after checking its shape against the configured targets."""
    if not isinstance(doc, dict) or doc.get("schema") != 1:
        raise KmError("manifest.json: not a schema 1 manifest")
    if doc.get("version") != str(version):
        raise KmError(f"manifest.json: is for {doc.get('version')!r}, not {version}")
    arts = doc.get("artifacts")
    if not isinstance(arts, list):
        raise KmError("manifest.json: no artifact list")
    names = [a.get("name") for a in arts if isinstance(a, dict)]
    expected = build.file_names
    if sorted(n for n in names if isinstance(n, str)) != sorted(expected) or len(names) != len(arts):
        missing = sorted(set(expected) - set(names))
        extra = sorted(str(n) for n in set(names) - set(expected))
        raise KmError(
            f"manifest.json: artifacts differ from the matrix (missing {missing}, unexpected {extra})"
        )
    for a in arts:
        t = build.target_of(a["name"])
        assert t is not None  # the names were checked against the configuration above
        if (a.get("os"), a.get("arch")) != (t.os, t.arch):
            raise KmError(f"manifest.json: {a['name']} is labelled {a.get('os')}/{a.get('arch')}")
    return arts


def load_release(ctx: ReleaseContext, *, require_signatures: bool = False) -> Release:
    """Load ``ctx.dist`` and prove it is complete and consistent, or raise one clear error.

    The signature files of ``SHA256SUMS`` belong to the release when present (required with
    ``require_signatures``); the signing stage has checked them.
    """
    dist, v = ctx.dist, ctx.version
    if not dist.is_dir():
        raise KmError(f"{dist} does not exist: run `inv build --version {v}` first")
    try:
        manifest = json.loads((dist / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KmError(f"{dist / MANIFEST} is missing: run `inv checksums --version {v}`") from None
    except ValueError as exc:
        raise KmError(f"{dist / MANIFEST} is not valid JSON: {exc}") from None
    arts = check_manifest(manifest, v, ctx.build)
    binaries = ctx.build.file_names
    extras = {p.name: p for p in extra_files(dist)}
    signed = require_signatures or any((dist / n).is_file() for n in SIGNATURE_FILES)
    names = release_file_names(binaries, list(extras), signed=signed)
    missing = [n for n in names if n not in extras and not (dist / n).is_file()]
    if missing:
        raise KmError(f"{dist} is incomplete: missing {', '.join(missing)}")
    paths = {n: extras.get(n, dist / n) for n in names}
    files = {n: ReleaseFile(n, paths[n], digest_file(paths[n])) for n in names}
    try:
        sums = parse_sums(files[SUMS].path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise KmError(f"{SUMS}: {exc}") from None
    if sorted(sums) != sorted([*binaries, *extras]):
        raise KmError(
            f"{SUMS}: lists {sorted(sums)}, expected {sorted([*binaries, *extras])} "
            f"(run `inv checksums --version {v}`)"
        )
    stale = [n for n in extras if sums[n] != files[n].digest.sha256]
    if stale:
        raise KmError(f"{SUMS}: hashes of {', '.join(stale)} differ (run `inv checksums --version {v}`)")
    for a in arts:
        name = a["name"]
        actual = files[name].digest
        problems = []
        if a.get("sha256") != actual.sha256:
            problems.append(f"manifest says {a.get('sha256')}")
        if a.get("size") != actual.size:
            problems.append(f"manifest says {a.get('size')} bytes, file has {actual.size}")
        if sums[name] != actual.sha256:
            problems.append(f"{SUMS} says {sums[name]}")
        side = files[sha256_name(name)].path.read_text(encoding="utf-8")
        if side != f"{actual.sha256}  {name}\n":
            problems.append(f"{sha256_name(name)} says {side.split(' ')[0].strip()!r}")
        if a.get("path") != key_of(Kind.VERSIONED, version=str(v), file=name):
            problems.append(f"manifest path is {a.get('path')!r}")
        if problems:
            raise KmError(f"{name}: hash {actual.sha256} does not match: {'; '.join(problems)}")
    return Release(v, manifest, tuple(files[n] for n in names))
