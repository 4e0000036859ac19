"""Streaming file hashes: files are never read whole."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


@dataclass(frozen=True)
class FileDigest:
    size: int
    sha256: str  # hex
    md5: bytes  # raw: what Azure stores as Content-MD5


_Key = tuple[str, int, int, int, int]
_MEMO: dict[_Key, FileDigest] = {}
_MD5_MEMO: dict[_Key, tuple[int, bytes]] = {}


def _key(path: Path) -> _Key:
    st = path.stat()
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def digest_file(path: Path) -> FileDigest:
    """SHA-256 and MD5 in one streaming pass; remembered while the file is unchanged.

    The memo key holds the inode, size and nanosecond mtime, so a rewrite (in place
    or by rename) is always hashed again.
    """
    key = _key(path)
    if key not in _MEMO:
        _MEMO[key] = _digest(path)
    return _MEMO[key]


def md5_file(path: Path) -> tuple[int, bytes]:
    """Size and raw MD5 (what a destination's stat compares), remembered like :func:`digest_file`;
    no SHA-256 unless :func:`digest_file` already made one."""
    key = _key(path)
    if key in _MEMO:
        return _MEMO[key].size, _MEMO[key].md5
    if key not in _MD5_MEMO:
        md5, size = hashlib.md5(usedforsecurity=False), 0
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                md5.update(chunk)
                size += len(chunk)
        _MD5_MEMO[key] = (size, md5.digest())
    return _MD5_MEMO[key]


def hash_file(path: Path) -> FileDigest:
    """SHA-256 and MD5 of what the file holds now (never from the memo)."""
    return _digest(path)


def hash_sha256(path: Path) -> str:
    """SHA-256 (hex) of what the file holds now, never from the memo; no MD5 (half the work)."""
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def _digest(path: Path) -> FileDigest:
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return FileDigest(size, sha.hexdigest(), md5.digest())


def digest_bytes(data: bytes) -> FileDigest:
    return FileDigest(
        len(data), hashlib.sha256(data).hexdigest(), hashlib.md5(data, usedforsecurity=False).digest()
    )


def sha256_file(path: Path) -> str:
    return digest_file(path).sha256
