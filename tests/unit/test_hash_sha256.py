"""hash_sha256: what the file holds now (the local destination's content check), never the memo."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from kmrelease.destinations.local import LocalSite
from kmrelease.hashing import CHUNK, digest_file, hash_sha256, md5_file


def test_hash_sha256_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    data = os.urandom(CHUNK + 17)  # more than one chunk
    path = tmp_path / "f"
    path.write_bytes(data)
    assert hash_sha256(path) == hashlib.sha256(data).hexdigest() == digest_file(path).sha256


def test_a_flip_with_size_and_mtime_put_back_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"a" * 100)
    st = path.stat()
    assert digest_file(path).sha256 == hashlib.sha256(b"a" * 100).hexdigest()
    time.sleep(0.02)  # past the change time's tick
    with path.open("r+b") as fh:  # same inode, size and mtime: the change time still moves
        fh.write(b"b")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_ctime_ns != st.st_ctime_ns
    assert digest_file(path).sha256 == hashlib.sha256(b"b" + b"a" * 99).hexdigest()
    assert hash_sha256(path) == hashlib.sha256(b"b" + b"a" * 99).hexdigest()


def test_local_destination_sha256_reads_the_file_now(tmp_path: Path) -> None:
    dest = LocalSite(tmp_path)
    (tmp_path / "releases").mkdir()
    path = tmp_path / "releases" / "x"
    path.write_bytes(b"one")
    assert dest.sha256("releases/x") == hashlib.sha256(b"one").hexdigest()
    assert dest.sha256("releases/missing") is None


def test_md5_file_agrees_with_digest_file_and_sees_a_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "g"
    path.write_bytes(b"x" * 1000)
    assert md5_file(path) == (1000, hashlib.md5(b"x" * 1000, usedforsecurity=False).digest())
    path.write_bytes(b"y" * 999)  # a new size (and mtime): hashed again
    assert md5_file(path) == (999, hashlib.md5(b"y" * 999, usedforsecurity=False).digest())
    d = digest_file(path)
    assert md5_file(path) == (d.size, d.md5)


def test_local_destination_stat_is_size_and_md5(tmp_path: Path) -> None:
    dest = LocalSite(tmp_path)
    (tmp_path / "releases").mkdir()
    (tmp_path / "releases" / "y").write_bytes(b"two")
    info = dest.stat("releases/y")
    assert info is not None
    assert (info.size, info.md5) == (3, hashlib.md5(b"two", usedforsecurity=False).digest())
    assert dest.stat("releases/none") is None
