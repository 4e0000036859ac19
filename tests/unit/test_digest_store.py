"""The remembered file digests (kmrelease.hashing): what is trusted across runs, and what is not."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kmrelease import hashing
from kmrelease.hashing import digest_file, hash_sha256, md5_file, persistent


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(hashing, "_CACHE", {})
    yield


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files actually read (not answered from what is remembered)."""
    seen: list[Path] = []
    real = hashing._read

    def spy(path: Path, *, sha256: bool, md5: bool) -> hashing._Entry:
        seen.append(path)
        return real(path, sha256=sha256, md5=md5)

    monkeypatch.setattr(hashing, "_read", spy)
    return seen


def settle(path: Path) -> None:
    """Pretend ``path`` was last changed long ago: its remembered entry counts as settled."""
    entry = hashing._CACHE[str(path.absolute())]
    entry.hashed_at = entry.key[4] + hashing.RACY_NS


def test_a_settled_digest_is_remembered_across_runs(tmp_path: Path, reads: list[Path]) -> None:
    store, f = tmp_path / "cache" / "digests.json", tmp_path / "f"
    f.write_bytes(b"x" * 5000)
    with persistent(store):
        d = digest_file(f)
        settle(f)
    assert json.loads(store.read_text())["entries"][str(f)][-2] == d.sha256
    hashing._CACHE.clear()  # a new process
    with persistent(store):
        assert digest_file(f) == d and md5_file(f) == (d.size, d.md5) and hash_sha256(f) == d.sha256
    assert reads == [f]  # read once, in the first run


def test_an_unchanged_store_is_not_rewritten(tmp_path: Path) -> None:
    store, f = tmp_path / "digests.json", tmp_path / "f"
    f.write_bytes(b"y")
    with persistent(store):
        digest_file(f)
        settle(f)
    before = store.stat()
    hashing._CACHE.clear()
    with persistent(store):
        digest_file(f)
    assert (store.stat().st_ino, store.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_same_size_flip_with_mtime_put_back_is_hashed_again(tmp_path: Path, reads: list[Path]) -> None:
    store, f = tmp_path / "digests.json", tmp_path / "f"
    f.write_bytes(b"a" * 4096)
    with persistent(store):
        digest_file(f)
        settle(f)
    st = f.stat()
    time.sleep(0.02)  # past the change time's tick
    with f.open("r+b") as fh:
        fh.write(b"b")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    hashing._CACHE.clear()
    with persistent(store):
        assert hash_sha256(f) == hashlib.sha256(b"b" + b"a" * 4095).hexdigest()
        assert digest_file(f).sha256 == hashlib.sha256(b"b" + b"a" * 4095).hexdigest()
    assert reads == [f, f, f]  # the first run; then the flipped file, SHA-256 alone, then with MD5


def test_a_racy_entry_is_neither_stored_nor_trusted_by_the_content_check(
    tmp_path: Path, reads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, f = tmp_path / "digests.json", tmp_path / "f"
    f.write_bytes(b"new")
    changed = f.stat().st_ctime_ns
    monkeypatch.setattr(hashing.time, "time_ns", lambda: changed + 1_000_000)  # hashed 1 ms later
    with persistent(store):
        digest_file(f)
        digest_file(f)  # this process may use it
        hash_sha256(f)  # the content check may not
    assert reads == [f, f]
    assert not store.exists() or str(f) not in json.loads(store.read_text())["entries"]


@pytest.mark.parametrize("content", [b"{not json", b'{"version": 99, "entries": {}}', b'{"version": 1}'])
def test_an_unreadable_store_is_ignored(tmp_path: Path, content: bytes, reads: list[Path]) -> None:
    store, f = tmp_path / "digests.json", tmp_path / "f"
    store.write_bytes(content)
    f.write_bytes(b"z")
    with persistent(store):
        assert digest_file(f).sha256 == hashlib.sha256(b"z").hexdigest()
        settle(f)
    assert reads == [f]
    assert str(f) in json.loads(store.read_text())["entries"]  # rewritten whole


def test_a_stored_entry_for_another_inode_is_not_used(tmp_path: Path, reads: list[Path]) -> None:
    store, f = tmp_path / "digests.json", tmp_path / "f"
    f.write_bytes(b"one")
    with persistent(store):
        digest_file(f)
        settle(f)
    replacement = tmp_path / "g"
    replacement.write_bytes(b"two")
    os.replace(replacement, f)  # another file under the same name
    hashing._CACHE.clear()
    with persistent(store):
        assert digest_file(f).sha256 == hashlib.sha256(b"two").hexdigest()
    assert reads == [f, f]


def test_a_file_that_settled_during_the_run_is_hashed_again_and_stored(
    tmp_path: Path, reads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, f = tmp_path / "digests.json", tmp_path / "f"
    f.write_bytes(b"built early")
    with persistent(store):
        d = digest_file(f)  # racy: just written
        real = time.time_ns
        monkeypatch.setattr(hashing.time, "time_ns", lambda: real() + hashing.RACY_NS)  # 2 s later
    assert reads == [f, f]  # hashed again when the run ended, then stored
    assert json.loads(store.read_text())["entries"][str(f)][-2] == d.sha256


def test_the_entry_of_a_removed_file_is_dropped_when_the_store_is_written(tmp_path: Path) -> None:
    store, gone, kept = tmp_path / "digests.json", tmp_path / "gone", tmp_path / "kept"
    gone.write_bytes(b"1")
    with persistent(store):
        digest_file(gone)
        settle(gone)
    gone.unlink()
    kept.write_bytes(b"2")
    hashing._CACHE.clear()
    with persistent(store):
        digest_file(kept)
        settle(kept)
    assert list(json.loads(store.read_text())["entries"]) == [str(kept)]


@pytest.mark.parametrize(
    "ctime_ns,after_ns,settled",
    [
        (1_700_000_000_123_456_789, 150_000_000, True),  # sub-second times: a tick is at most 10 ms
        (1_700_000_000_123_456_789, 50_000_000, False),
        (1_700_000_000_000_000_000, 1_500_000_000, False),  # whole seconds (FAT: two): 2 s
        (1_700_000_000_000_000_000, 2_000_000_000, True),
    ],
)
def test_how_long_a_file_must_be_left_alone_depends_on_its_time_stamps(
    ctime_ns: int, after_ns: int, settled: bool
) -> None:
    entry = hashing._Entry((1, 2, 3, ctime_ns, ctime_ns), ctime_ns + after_ns)
    assert entry.settled is settled
