"""The destination interface that the publishing algorithm (``publish.py``) is written against.

Keys are origin keys of ``urlspace`` (``releases/v1.2.3/km-linux-amd64``). Every
write is atomic at the key: a reader sees the old object or the whole new one.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..hashing import FileDigest
from ..ui import Bar, Reporter


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    md5: bytes | None  # None when the backend does not know it


class Cdn(Protocol):
    """A CDN in front of a destination, purged after a release changed public paths."""

    label: str

    def purge(self, reporter: Reporter, *, dry_run: bool = False) -> None:
        """Purge the mutable public paths; say so and do nothing when it is not configured."""


class Destination(Protocol):
    label: str  # for messages: "local site /x/site", "Azure Storage account st..."
    parallel_uploads: int  # versioned files uploaded at once (1: one after another)
    cdn: Cdn | None  # the CDN in front of it, None when there is none
    mirrors_to_github: bool  # whether a release here is also attached to its GitHub Release
    public: bool  # what users install from: signed only with release keys (a local site is not)

    def verify_url(self) -> AbstractContextManager[str | None]:
        """The base URL to verify a release through while the context lasts; None: cannot be verified."""

    def check_writable(self) -> None:
        """Raise a KmError unless writes can succeed (credentials, permissions). Changes nothing."""

    def stat(self, key: str) -> ObjectInfo | None:
        """Size and MD5 of an object, or None when it does not exist."""

    def read_bytes(self, key: str) -> bytes | None:
        """A small object's content, or None when it does not exist."""

    def upload(
        self, key: str, path: Path, digest: FileDigest, headers: dict[str, str], *, overwrite: bool, bar: Bar
    ) -> None:
        """Stream a file to ``key``. Without ``overwrite`` an existing object is an error."""

    def put_bytes(self, key: str, data: bytes, headers: dict[str, str]) -> None:
        """Write a small object atomically, replacing it."""

    def copy(self, src: str, dst: str, headers: dict[str, str]) -> None:
        """Copy an object within the destination (server side where possible), replacing ``dst``."""

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (which ends with ``/``)."""

    def delete(self, key: str) -> None:
        """Remove an object (missing is fine)."""

    def sha256(self, key: str) -> str | None:
        """The SHA-256 (hex) of an object's content, read in full now (never a stored property);
        None when it does not exist."""

    def replace_if(self, key: str, data: bytes, headers: dict[str, str], expected: bytes | None) -> None:
        """Write a small object only while it still holds ``expected`` (None: absent), atomically
        (a conditional write); otherwise raise a KmError and write nothing."""

    def publishing(self, holder: str) -> AbstractContextManager[None]:
        """Hold this destination's one publisher lock for the block. When another publisher holds
        it, raise a KmError naming that holder before anything is written."""
