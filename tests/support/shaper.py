"""A link-shaping TCP proxy on loopback: a server as a client would reach it over a real link.

``ShapedLink(upstream_port, rate=12_500_000, rtt=0.02)`` listens on 127.0.0.1 and relays every
connection to ``127.0.0.1:upstream_port``, unchanged, with:

- a round-trip time ``rtt`` (s): each direction's bytes are delivered ``rtt / 2`` after they
  arrived, and a new connection's first bytes one more ``rtt`` later (its TCP handshake);
- a bandwidth ``rate`` (bytes/s) shared by every connection's server→client bytes, as one
  access link is (the requests are small; they only get the delay).

Used by the install benchmark for its "realistic link" line (100 Mbit/s = 12.5 MB/s). Threads
only, no root: the pacing is done here, not by ``tc``.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from types import TracebackType

CHUNK = 16 * 1024


class _Bucket:
    """A token bucket of ``rate`` bytes/s (burst: one chunk), shared by the senders using it."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.lock = threading.Lock()
        self.free_at = time.monotonic()

    def take(self, n: int) -> None:
        with self.lock:
            now = time.monotonic()
            start = max(now, self.free_at)
            self.free_at = start + n / self.rate
            wait = self.free_at - now - CHUNK / self.rate
        if wait > 0:
            time.sleep(wait)


class ShapedLink:
    def __init__(self, upstream_port: int, *, rate: float = 12_500_000, rtt: float = 0.02) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.rate = rate
        self.rtt = rtt
        self.bucket = _Bucket(rate)
        self._listener: socket.socket | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ShapedLink:
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", 0))
        lst.listen(64)
        self.port = lst.getsockname()[1]
        self._listener = lst
        threading.Thread(target=self._accept, args=(lst,), daemon=True).start()
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None

    def _accept(self, lst: socket.socket) -> None:
        while True:
            try:
                client, _ = lst.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        opened = time.monotonic() + self.rtt  # the handshake the client would have waited for
        _Pipe(client, server, self.rtt / 2, None, opened).start()
        _Pipe(server, client, self.rtt / 2, self.bucket, opened).start()


class _Pipe:
    """One direction: a reader stamps each chunk, a writer delivers it ``delay`` s later, paced."""

    def __init__(
        self, src: socket.socket, dst: socket.socket, delay: float, bucket: _Bucket | None, opened: float
    ) -> None:
        self.src, self.dst, self.delay, self.bucket = src, dst, delay, bucket
        self.opened = opened
        self.q: queue.Queue[tuple[float, bytes]] = queue.Queue()

    def start(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self) -> None:
        try:
            while data := self.src.recv(CHUNK):
                self.q.put((max(time.monotonic(), self.opened) + self.delay, data))
        except OSError:
            pass
        self.q.put((time.monotonic() + self.delay, b""))

    def _write(self) -> None:
        try:
            while True:
                due, data = self.q.get()
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                if not data:
                    break
                if self.bucket is not None:
                    self.bucket.take(len(data))
                self.dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            self.dst.shutdown(socket.SHUT_WR)
