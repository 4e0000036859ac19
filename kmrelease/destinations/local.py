"""A local site directory laid out exactly like the blob containers (``<container>/<blob>``)."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import KmError
from ..hashing import CHUNK, FileDigest, hash_sha256, md5_file
from ..ui import Bar
from .base import Cdn, ObjectInfo
from .guard import busy, holder_line, moved

LOCK_FILE = ".km-publish.lock"  # hidden: never listed, never routed by the edge


class LocalSite:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = f"local site {root}"
        self.parallel_uploads = 1  # local disk: one stream at a time is as fast as it gets
        self.cdn: Cdn | None = None  # the local edge serves straight from the directory
        self.mirrors_to_github = False
        self.public = False  # a development site: development signing keys are fine

    @contextmanager
    def verify_url(self) -> Iterator[str | None]:
        """The local edge in front of this directory, in process, over real HTTP."""
        from ..serve import SiteBackend, running

        with running(SiteBackend(self.root)) as url:
            yield url

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts):
            raise KmError(f"refusing unsafe key {key!r}")
        return self.root.joinpath(*parts)

    def check_writable(self) -> None:
        probe = self.root
        while not probe.exists():
            if probe.parent == probe:
                break
            probe = probe.parent
        if not probe.is_dir():
            raise KmError(f"site directory {self.root} is not writable: {probe} is not a directory")
        try:
            fd, name = tempfile.mkstemp(prefix=".km-probe-", dir=probe)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise KmError(f"site directory {self.root} is not writable: {reason}") from None
        os.close(fd)
        os.unlink(name)

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        if not path.is_file():
            return None
        size, md5 = md5_file(path)
        return ObjectInfo(size, md5)

    def read_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def _atomic_write(self, path: Path, write: Callable[[BinaryIO], object]) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            raise KmError(f"cannot write {path}: {os.strerror(exc.errno or errno.EIO)}") from None
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def upload(
        self, key: str, path: Path, digest: FileDigest, headers: dict[str, str], *, overwrite: bool, bar: Bar
    ) -> None:
        target = self._path(key)
        if not overwrite and target.exists():
            raise KmError(f"{key} already exists")

        def write(out: BinaryIO) -> None:
            with path.open("rb") as src:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                    bar.advance(len(chunk))

        self._atomic_write(target, write)

    def put_bytes(self, key: str, data: bytes, headers: dict[str, str]) -> None:
        self._atomic_write(self._path(key), lambda out: out.write(data))

    def copy(self, src: str, dst: str, headers: dict[str, str]) -> None:
        source = self._path(src)
        self._atomic_write(self._path(dst), lambda out: _copy_into(source, out))

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix.rstrip("/"))
        if not base.is_dir():
            return []
        return sorted(
            f"{prefix}{p.relative_to(base).as_posix()}"
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def sha256(self, key: str) -> str | None:
        path = self._path(key)
        return hash_sha256(path) if path.is_file() else None

    def replace_if(self, key: str, data: bytes, headers: dict[str, str], expected: bytes | None) -> None:
        # Every writer of a site holds its publisher lock, so compare-then-replace is atomic here.
        found = self.read_bytes(key)
        if found != expected:
            raise moved(key, found)
        self.put_bytes(key, data, headers)

    @contextmanager
    def publishing(self, holder: str) -> Iterator[None]:
        """``flock`` on ``<site>/.km-publish.lock``, which exists only while a publisher holds it (the
        kernel releases the lock if that process dies)."""
        fd = self._lock_fd()
        try:
            line = (holder_line(holder) + "\n").encode()
            os.pwrite(fd, line, 0)
            os.ftruncate(fd, len(line))
            try:
                yield
            finally:
                (self.root / LOCK_FILE).unlink(missing_ok=True)  # while still holding it
        finally:
            os.close(fd)  # releases the lock

    def _lock_fd(self) -> int:
        """An open, locked lock file that is still the one at its path (a holder unlinks it on exit)."""
        path = self.root / LOCK_FILE
        for _ in range(50):
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise KmError(f"cannot lock {self.root}: {os.strerror(exc.errno or errno.EIO)}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder_of(fd)
                os.close(fd)
                raise busy(self.label, holder) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)  # locked a file its holder had just removed: take the new one
        raise busy(self.label, b"")


def _holder_of(fd: int) -> bytes:
    """The holder line of a held lock; it is written just after the lock is taken: wait a little."""
    for _ in range(20):
        line = os.pread(fd, 512, 0)
        if line.endswith(b"\n"):
            return line
        time.sleep(0.025)
    return b""


def _copy_into(source: Path, out: BinaryIO) -> None:
    with source.open("rb") as src:
        shutil.copyfileobj(src, out, CHUNK)
