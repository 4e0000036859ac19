"""Before ``latest/`` or ``/version`` move: the content of every versioned file that goes into
``latest/`` still matches its published checksum (issue 14 point 2).

Sizes and stored MD5 properties say what was uploaded, not what is there now: a byte flipped
in place (same size) keeps both. So each file is read in full and hashed
(:meth:`~kmrelease.destinations.Destination.sha256`) and compared with

- in a release: the SHA-256 of the local file (``dist/V/``, proved consistent with its
  ``SHA256SUMS`` by :func:`~kmrelease.artifacts.load_release`);
- in a promotion: the versioned ``SHA256SUMS`` (read from the destination and parsed
  strictly), which must agree with the versioned ``manifest.json``; a ``<file>.sha256`` must
  be exactly its ``SHA256SUMS`` line; ``SHA256SUMS`` and ``manifest.json`` are the bytes just
  read and cross-checked. A file ``SHA256SUMS`` does not cover (its signatures) is checked by
  its own verification, not here.

A mismatch refuses the whole promotion before anything public changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from .artifacts import parse_sums
from .destinations import Destination
from .errors import KmError
from .layout import MANIFEST, SUMS
from .urlspace import Kind, key_of
from .version import Version


def expected_from_published(
    version: Version, sums_raw: bytes, manifest_raw: bytes, arts: Iterable[Mapping[str, Any]]
) -> dict[str, str]:
    """The SHA-256 each versioned file must have, from the published SHA256SUMS and manifest."""
    folder = key_of(Kind.VERSIONED, version=str(version), file="")
    try:
        sums = parse_sums(sums_raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise KmError(f"{folder}{SUMS} is not a valid checksum list ({exc}): not promoted") from None
    for a in arts:
        if sums.get(a["name"]) != str(a.get("sha256", "")).lower():
            raise KmError(f"{folder}{SUMS} and {MANIFEST} disagree on {a['name']}: not promoted")
    expected = dict(sums)
    expected.update({f"{name}.sha256": _sha(f"{h}  {name}\n".encode()) for name, h in sums.items()})
    expected[SUMS] = _sha(sums_raw)
    expected[MANIFEST] = _sha(manifest_raw)
    return expected


def check_content(
    dest: Destination, version: Version, names: Iterable[str], expected: Mapping[str, str]
) -> None:
    """Hash every versioned file in ``names`` that ``expected`` covers; refuse on the first mismatch."""
    v = str(version)
    for name in names:
        want = expected.get(name)
        if want is None:
            continue
        key = key_of(Kind.VERSIONED, version=v, file=name)
        got = dest.sha256(key)
        if got is None:
            raise KmError(f"{key} disappeared from {dest.label}: nothing was moved")
        if got != want.lower():
            raise KmError(
                f"{key} no longer matches its published checksum (sha256 {got[:16]}…, expected "
                f"{want[:16]}…): nothing was moved; re-publish {v} with --force or promote another version"
            )


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
