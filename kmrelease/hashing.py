"""Streaming file hashes (files are never read whole), remembered by what ``stat`` says of the file.

A file's digests are remembered under its key ``(st_dev, st_ino, st_size, st_mtime_ns,
st_ctime_ns)``, taken from the open file before and after it is read (a file that changed while
it was read is not remembered); any difference in the key hashes it again. The change time
cannot be set by a user (``touch``/``utime`` set the modification time, and themselves
update the change time), so a rewrite in place, even of one byte with the size and the
modification time put back, always changes the key.

Within a process every entry is used by :func:`digest_file` and :func:`md5_file`. Across
processes (:func:`persistent`: ``<project>/.cache/kmrelease/digests.json`` while a task runs)
and for :func:`hash_sha256` (the content check of what a destination holds now), only a
*settled* entry counts: one whose hash started at least a timestamp tick after the file's
change time. A write within the same tick as the one before it may leave the change time as
it was (the "racy git" problem); a file that had not changed for a whole tick before it was
read cannot be rewritten later without its change time moving. The tick: a file system that
keeps sub-second times gets them from the kernel's clock, which moves at least every 10 ms
(HZ ≥ 100): :data:`RACY_FINE_NS` (ten ticks) there; one that keeps whole seconds (FAT keeps
two): :data:`RACY_NS`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
RACY_NS = 2_000_000_000  # whole-second change times: one within 2 s of the hash is not trusted later
RACY_FINE_NS = 100_000_000  # sub-second change times: within 0.1 s
STORE_LIMIT = 5_000  # entries kept in the persistent store (the most recently hashed files that exist)
_STORE_VERSION = 1


@dataclass(frozen=True)
class FileDigest:
    size: int
    sha256: str  # hex
    md5: bytes  # raw: what Azure stores as Content-MD5


_Key = tuple[int, int, int, int, int]


@dataclass
class _Entry:
    key: _Key
    hashed_at: int  # time.time_ns() when the read started
    sha256: str | None = None
    md5: bytes | None = None

    @property
    def settled(self) -> bool:
        return self.hashed_at - self.key[4] >= racy_window(self.key[4])


def racy_window(ctime_ns: int) -> int:
    """How long after its change time a file must be left alone before its hash can be trusted."""
    return RACY_FINE_NS if ctime_ns % 1_000_000_000 else RACY_NS


_CACHE: dict[str, _Entry] = {}  # by absolute path


def _key_of(st: os.stat_result) -> _Key:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _known(path: Path, *, sha256: bool, md5: bool, settled: bool) -> _Entry | None:
    """The remembered entry of ``path`` when its key still matches and it holds what is asked."""
    entry = _CACHE.get(str(path.absolute()))
    if entry is None or (settled and not entry.settled):
        return None
    if (sha256 and entry.sha256 is None) or (md5 and entry.md5 is None):
        return None
    try:
        if _key_of(path.stat()) != entry.key:
            return None
    except OSError:
        return None
    return entry


def _read(path: Path, *, sha256: bool, md5: bool) -> _Entry:
    """Hash what ``path`` holds now; remembered unless the file changed while it was read."""
    started = time.time_ns()
    sha = hashlib.sha256() if sha256 else None
    mdh = hashlib.md5(usedforsecurity=False) if md5 else None
    size = 0
    with path.open("rb") as fh:
        before = _key_of(os.fstat(fh.fileno()))
        while chunk := fh.read(CHUNK):
            size += len(chunk)
            if sha is not None:
                sha.update(chunk)
            if mdh is not None:
                mdh.update(chunk)
        after = _key_of(os.fstat(fh.fileno()))
    entry = _Entry(
        (after[0], after[1], size, after[3], after[4]),
        started,
        sha.hexdigest() if sha is not None else None,
        mdh.digest() if mdh is not None else None,
    )
    name = str(path.absolute())
    if before == after and after[2] == size:
        old = _CACHE.get(name)
        lacks = old is not None and ((old.sha256 and not sha256) or (old.md5 and not md5))
        if old is not None and old.key == entry.key and lacks:  # keep what the other hash knew
            entry.sha256 = entry.sha256 or old.sha256
            entry.md5 = entry.md5 or old.md5
            entry.hashed_at = min(entry.hashed_at, old.hashed_at)  # settled only if both are
        _CACHE[name] = entry
    return entry


def digest_file(path: Path) -> FileDigest:
    """SHA-256 and MD5 in one streaming pass; remembered while the file's key is unchanged."""
    entry = _known(path, sha256=True, md5=True, settled=False) or _read(path, sha256=True, md5=True)
    assert entry.sha256 is not None and entry.md5 is not None
    return FileDigest(entry.key[2], entry.sha256, entry.md5)


def md5_file(path: Path) -> tuple[int, bytes]:
    """Size and raw MD5 (what a destination's stat compares), remembered like :func:`digest_file`;
    no SHA-256 unless one is already known."""
    entry = _known(path, sha256=False, md5=True, settled=False) or _read(path, sha256=False, md5=True)
    assert entry.md5 is not None
    return entry.key[2], entry.md5


def hash_file(path: Path) -> FileDigest:
    """SHA-256 and MD5 of what the file holds now (always read)."""
    entry = _read(path, sha256=True, md5=True)
    assert entry.sha256 is not None and entry.md5 is not None
    return FileDigest(entry.key[2], entry.sha256, entry.md5)


def hash_sha256(path: Path) -> str:
    """SHA-256 (hex) of what the file holds now: read, unless a *settled* entry with the file's
    current key knows it (see the module's note); no MD5 (half the work)."""
    entry = _known(path, sha256=True, md5=False, settled=True) or _read(path, sha256=True, md5=False)
    assert entry.sha256 is not None
    return entry.sha256


def digest_bytes(data: bytes) -> FileDigest:
    return FileDigest(
        len(data), hashlib.sha256(data).hexdigest(), hashlib.md5(data, usedforsecurity=False).digest()
    )


def sha256_file(path: Path) -> str:
    return digest_file(path).sha256


# --- the persistent store ---------------------------------------------------------------


@contextlib.contextmanager
def persistent(store: Path) -> Iterator[None]:
    """Settled entries of ``store`` are known while the block runs; afterwards the settled entries
    of this process are written back (atomically; a store that cannot be read or written is
    ignored: everything is hashed again)."""
    loaded = _load(store)
    for name, entry in loaded.items():
        _CACHE.setdefault(name, entry)
    try:
        yield
    finally:
        _save(store, loaded)


def _load(store: Path) -> dict[str, _Entry]:
    try:
        doc = json.loads(store.read_bytes())
        if doc.get("version") != _STORE_VERSION:
            return {}
        out = {}
        for name, (dev, ino, size, mtime, ctime, at, sha, md5) in doc["entries"].items():
            entry = _Entry((dev, ino, size, mtime, ctime), at, sha, bytes.fromhex(md5) if md5 else None)
            if all(isinstance(v, int) for v in (*entry.key, at)) and entry.settled:
                out[name] = entry
        return out
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def _settle_since(now: int) -> None:
    """Hash again each file remembered while racy that has not changed for its racy window since
    (what a run built or wrote early on), so that the next run can trust it."""
    due = [
        (name, entry)
        for name, entry in list(_CACHE.items())
        if not entry.settled and now - entry.key[4] >= racy_window(entry.key[4])
    ]
    if not due:
        return
    from concurrent.futures import ThreadPoolExecutor  # hashlib leaves the GIL: a core each

    with ThreadPoolExecutor(min(len(due), os.cpu_count() or 1), thread_name_prefix="km-settle") as pool:
        list(pool.map(_settle, due))


def _settle(item: tuple[str, _Entry]) -> None:
    name, entry = item
    path = Path(name)
    try:
        if _key_of(path.stat()) == entry.key:
            _read(path, sha256=entry.sha256 is not None, md5=entry.md5 is not None)
    except OSError:
        _CACHE.pop(name, None)


def _save(store: Path, loaded: dict[str, _Entry]) -> None:
    _settle_since(time.time_ns())
    settled = sorted(
        ((n, e) for n, e in _CACHE.items() if e.settled), key=lambda item: item[1].hashed_at, reverse=True
    )[:STORE_LIMIT]
    if dict(settled) == loaded:
        return  # nothing new: the store is not rewritten
    settled = [(n, e) for n, e in settled if os.path.exists(n)]  # a removed file's entry goes
    entries = {
        name: [*e.key, e.hashed_at, e.sha256, e.md5.hex() if e.md5 is not None else None]
        for name, e in settled
    }
    data = json.dumps({"version": _STORE_VERSION, "entries": entries}, separators=(",", ":"))
    import tempfile

    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".digests.", suffix=".tmp", dir=store.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(data)
            os.replace(tmp, store)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass  # a cache: the next run hashes again
