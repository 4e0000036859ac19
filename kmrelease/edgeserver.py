"""A bounded HTTP/1.1 server for the local edge: slow or idle clients cost a buffer, not a thread.

One selector thread accepts connections and reads each request head (request line + headers)
without blocking; only a complete head is handed to a fixed pool of ``workers`` threads, which
run a :class:`~http.server.BaseHTTPRequestHandler` for that one request and give a kept-alive
connection back to the selector. So:

- a slowloris (heads sent a byte at a time, or never finished) holds a file descriptor and at
  most ``max_head`` bytes per connection until ``head_timeout`` closes it, never a worker;
- an idle kept-alive connection is closed after ``idle_timeout``;
- at most ``max_connections`` are open at once (more are closed on accept), so memory is bounded;
- a request line longer than ``max_line`` gets 414, a head longer than ``max_head`` 431, both
  answered by the selector and closed;
- a worker writes with ``write_timeout`` per send: a client that stops reading frees it.
"""

from __future__ import annotations

import io
import selectors
import socket
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler


@dataclass(frozen=True)
class EdgeLimits:
    workers: int = 16
    max_connections: int = 1024
    head_timeout: float = 10.0  # seconds from the first byte of a request to the end of its head
    idle_timeout: float = 15.0  # seconds a kept-alive connection may wait for its next request
    write_timeout: float = 30.0  # seconds one send may block (a client that stopped reading)
    max_line: int = 8192  # bytes of the request line (the URL): more is 414
    max_head: int = 16384  # bytes of the whole head: more is 431


@dataclass
class _Conn:
    sock: socket.socket
    addr: tuple[str, int]
    deadline: float
    buf: bytearray = field(default_factory=bytearray)
    closing: bool = False  # answered with a refusal: reading what is left until EOF, then closed


_REFUSALS = {
    414: b"HTTP/1.1 414 URI Too Long\r\n",
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
    503: b"HTTP/1.1 503 Service Unavailable\r\n",
}


def _head_end(buf: bytearray) -> int:
    """Index just past the blank line ending the head, or -1."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = buf.find(sep)
        if i >= 0:
            return i + len(sep)
    return -1


class BoundedHTTPServer:
    """The ``serve_forever``/``shutdown``/``server_close`` interface of ``socketserver``."""

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        limits: EdgeLimits | None = None,
    ) -> None:
        self.limits = limits or EdgeLimits()
        self.handler = handler
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind(address)
            self.socket.listen(512)
        except OSError:
            self.socket.close()
            raise
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()[:2]
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._returned: deque[_Conn] = deque()
        self._conns: dict[int, _Conn] = {}  # waiting for (the rest of) a head
        self._busy = 0  # handed to a worker
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="km-edge")
        self._stop = threading.Event()
        self._stopped = threading.Event()

    # the selector thread -------------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.25) -> None:
        self._sel.register(self.socket, selectors.EVENT_READ, "accept")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._stopped.clear()
        next_sweep = 0.0
        try:
            while not self._stop.is_set():
                for key, _ in self._sel.select(poll_interval):
                    self._event(key)
                self._take_back()
                now = time.monotonic()
                if now >= next_sweep:
                    self._expire(now)
                    next_sweep = now + 0.1
        finally:
            self._stopped.set()

    def _event(self, key: selectors.SelectorKey) -> None:
        if key.data == "accept":
            self._accept()
        elif key.data == "wake":
            with suppress(BlockingIOError):
                self._wake_r.recv(4096)
        else:
            self._read(key.data)

    def _open(self) -> int:
        with self._lock:
            return len(self._conns) + self._busy

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, addr = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. EMFILE: the next round tries again
            sock.setblocking(False)
            conn = _Conn(sock, addr, time.monotonic() + self.limits.head_timeout)
            if self._open() >= self.limits.max_connections + 64:
                sock.close()  # a flood: not even a lingering refusal
                continue
            if self._open() >= self.limits.max_connections:
                self._refuse(conn, 503, new=True)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._watch(conn)

    def _watch(self, conn: _Conn) -> None:
        with self._lock:
            self._conns[conn.sock.fileno()] = conn
        self._sel.register(conn.sock, selectors.EVENT_READ, conn)
        if not conn.closing and _head_end(conn.buf) >= 0:  # a pipelined request already here
            self._dispatch(conn)

    def _forget(self, conn: _Conn) -> None:
        with suppress(KeyError, ValueError):
            self._sel.unregister(conn.sock)
        with self._lock:
            self._conns.pop(conn.sock.fileno(), None)

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(8192)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._forget(conn)
            conn.sock.close()
            return
        if conn.closing:
            return  # discarded: the refusal was sent
        if not conn.buf:  # the first byte of a request: its head must follow in time
            conn.deadline = time.monotonic() + self.limits.head_timeout
        conn.buf += data
        self._check_head(conn)

    def _check_head(self, conn: _Conn) -> None:
        end = _head_end(conn.buf)
        line_end = conn.buf.find(b"\n")
        if line_end > self.limits.max_line or (line_end < 0 and len(conn.buf) > self.limits.max_line):
            self._refuse(conn, 414)
        elif end > self.limits.max_head or (end < 0 and len(conn.buf) > self.limits.max_head):
            self._refuse(conn, 431)
        elif end >= 0:
            self._dispatch(conn)

    def _refuse(self, conn: _Conn, status: int, *, new: bool = False) -> None:
        """A short answer from the selector thread (never blocks), then a lingering close: what the
        client still sends is read and dropped for up to a second, so that closing with unread
        data does not reset the connection before the client has read the answer."""
        conn.buf = bytearray()
        conn.closing = True
        conn.deadline = time.monotonic() + 1.0
        try:
            conn.sock.send(_REFUSALS[status] + b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._forget(conn)
            conn.sock.close()
            return
        if new:
            self._watch(conn)

    def _expire(self, now: float) -> None:
        with self._lock:
            late = [c for c in self._conns.values() if c.deadline < now]
        for conn in late:
            self._forget(conn)
            conn.sock.close()

    def _dispatch(self, conn: _Conn) -> None:
        self._forget(conn)
        with self._lock:
            self._busy += 1
        try:
            self._pool.submit(self._work, conn)
        except RuntimeError:  # shutting down
            with self._lock:
                self._busy -= 1
            conn.sock.close()

    def _take_back(self) -> None:
        while self._returned:
            conn = self._returned.popleft()
            if self._stop.is_set():
                conn.sock.close()
                continue
            conn.deadline = time.monotonic() + (
                self.limits.head_timeout if conn.buf else self.limits.idle_timeout
            )
            self._watch(conn)

    # a worker ------------------------------------------------------------------------

    def _work(self, conn: _Conn) -> None:
        keep = False
        try:
            keep = self._answer(conn)
        except Exception:  # one broken connection never stops the server
            keep = False
        finally:
            with self._lock:
                self._busy -= 1
        if keep:
            conn.sock.setblocking(False)
            self._returned.append(conn)
            with suppress(OSError):
                self._wake_w.send(b"x")
        else:
            with suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
            conn.sock.close()

    def _answer(self, conn: _Conn) -> bool:
        """Run the handler for the one request at the start of ``conn.buf``; True to keep the
        connection for the next one."""
        conn.sock.settimeout(self.limits.write_timeout)
        head = bytes(conn.buf)
        h = _one_request(self.handler, conn.sock, conn.addr, self, head)
        rest = h.rfile.read()  # a pipelined next request, already read
        conn.buf = bytearray(rest)
        headers = getattr(h, "headers", None)
        has_body = headers is not None and (
            headers.get("Content-Length", "0") not in ("", "0") or "Transfer-Encoding" in headers
        )
        return not h.close_connection and not has_body and not self._stop.is_set()

    # life cycle ------------------------------------------------------------------------

    def shutdown(self) -> None:
        self._stop.set()
        with suppress(OSError):
            self._wake_w.send(b"x")
        self._stopped.wait(10)

    def server_close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            conns = list(self._conns.values())
            self._conns.clear()
        for conn in conns:
            conn.sock.close()
        with suppress(Exception):
            self._sel.close()
        for s in (self.socket, self._wake_r, self._wake_w):
            s.close()


def _one_request(
    handler: type[BaseHTTPRequestHandler],
    sock: socket.socket,
    addr: tuple[str, int],
    server: object,
    head: bytes,
) -> BaseHTTPRequestHandler:
    """A handler object answering exactly one request whose head (and maybe more) is ``head``."""
    h = handler.__new__(handler)
    h.request, h.client_address, h.server = sock, addr, server  # type: ignore[assignment]
    h.setup()
    with suppress(OSError):
        h.rfile.close()  # the socket's own reader: the head was read already
    h.rfile = io.BytesIO(head)
    h.close_connection = True
    try:
        h.handle_one_request()
    finally:
        with suppress(OSError):
            h.wfile.flush()
    return h
