"""A large local log counted by two processes: the first half here, the second half by a
forked worker at the same time (decoding and the per-request counters are most of the work).

The counts are exactly those of one pass: the worker adds its counters and hands back, in log
order, the requests whose rules depend on earlier ones (binary downloads, install starts,
failures) as small tuples; this process applies them after its own half
(:meth:`Aggregator.apply`). Small logs, and systems without ``fork``, take one pass.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .errors import KmError
from .metrics import Aggregator, LocalStats, Window, open_log, read_local

SPLIT_BYTES = 64 << 20  # below this, one pass (a worker costs more than it saves)


def split_point(path: Path, size: int) -> int:
    """The start of the first line at or after the middle of the file."""
    with open_log(path) as fh:
        fh.seek(size // 2)
        fh.readline()
        return fh.tell()


def _worker(path: Path, start: int, window: Window, binary: str, conn: Connection) -> None:
    try:
        agg, stats = Aggregator(binary), LocalStats()
        agg.deferred = []
        agg.feed(read_local(path, window, stats, start=start))
        conn.send(("ok", agg, stats))
    except KmError as exc:
        conn.send(("error", str(exc), None))
    except BaseException as exc:  # reported by the parent as one line
        conn.send(("error", f"{type(exc).__name__}: {exc}", None))
    finally:
        conn.close()


def feed_local(agg: Aggregator, path: Path, window: Window, split_bytes: int = SPLIT_BYTES) -> LocalStats:
    """Feed ``path`` into ``agg``; two processes for a log of ``split_bytes`` or more."""
    stats = LocalStats()
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    if size < split_bytes or sys.platform != "linux" or (os.cpu_count() or 1) < 2:
        agg.feed(read_local(path, window, stats))
        return stats
    middle = split_point(path, size)
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=_worker, args=(path, middle, window, agg.binary, send), daemon=True)
    worker.start()
    send.close()
    try:
        agg.feed(read_local(path, window, stats, end=middle))
        second = _receive(receive)
    finally:
        worker.join(timeout=5)
        if worker.is_alive():
            worker.kill()
    other, other_stats = second
    agg.apply(other)
    stats.lines += other_stats.lines
    stats.malformed += other_stats.malformed
    return stats


def _receive(conn: Connection) -> tuple[Aggregator, LocalStats]:
    try:
        status, value, stats = conn.recv()
    except EOFError:
        raise KmError(
            "the process counting the second half of the access log ended without a result"
        ) from None
    if status != "ok":
        raise KmError(f"counting the second half of the access log failed: {value}")
    result: Any = (value, stats)
    return result  # type: ignore[no-any-return]
