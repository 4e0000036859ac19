"""A fault-injecting TCP proxy for HTTP/1.1 between a client (the Azure SDK) and a server (Azurite).

Bytes are relayed unchanged, but the client→server direction is read request by
request (head, then ``Content-Length`` body) so faults hit whole requests:

- :meth:`fail_next` answers the next N requests itself with ``503 Server Busy``;
- :meth:`reset_next` forwards part of the next N request bodies, then resets the
  connection (RST) — a connection reset mid-upload;
- :meth:`kill_at` dies (listener closed, every connection reset) when request
  number N arrives; :meth:`restart` comes back on the same port.

Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field

BUSY = (
    b'<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>'
    b"<Message>The server is busy (injected by the test proxy).</Message></Error>"
)


def _rst(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


@dataclass
class Stats:
    requests: int = 0
    busy_sent: int = 0
    resets: int = 0
    kills: int = 0
    methods: list[str] = field(default_factory=list)


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.stats = Stats()
        self._lock = threading.Lock()
        self._busy = 0
        self._busy_at: set[int] = set()
        self._resets = 0
        self._reset_after = 0
        self._kill_at: int | None = None
        self._socks: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.port = 0
        self.alive = False

    # control ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, n: int) -> None:
        with self._lock:
            self._busy = n

    def fail_at(self, *request_numbers: int) -> None:
        """Answer 503 to the requests with these ordinal numbers (counted by ``stats.requests``)."""
        with self._lock:
            self._busy_at = set(request_numbers)

    def reset_next(self, n: int, after_bytes: int = 64 * 1024) -> None:
        """Reset the next ``n`` requests whose body is larger than ``after_bytes``, after that many bytes."""
        with self._lock:
            self._resets, self._reset_after = n, after_bytes

    def kill_at(self, request_number: int | None) -> None:
        with self._lock:
            self._kill_at = request_number

    def start(self) -> TcpProxy:
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", self.port))
        lst.listen(64)
        self.port = lst.getsockname()[1]
        self._listener = lst
        self.alive = True
        threading.Thread(target=self._accept, args=(lst,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Die: stop listening and reset every open connection."""
        with self._lock:
            self.alive = False
            lst, self._listener = self._listener, None
            socks, self._socks = list(self._socks), set()
        if lst is not None:
            with contextlib.suppress(OSError):
                lst.shutdown(socket.SHUT_RDWR)
            lst.close()
        for s in socks:
            _rst(s)

    def restart(self) -> None:
        self.stop()
        with self._lock:
            self._kill_at = None
        self.start()

    # relay ------------------------------------------------------------------------

    def _accept(self, lst: socket.socket) -> None:
        while True:
            try:
                client, _ = lst.accept()
            except OSError:
                return
            with self._lock:
                if not self.alive:
                    _rst(client)
                    return
                self._socks.add(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.add(sock)

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = client.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                head += b"\r\n\r\n"
                length = _content_length(head)
                with self._lock:
                    self.stats.requests += 1
                    self.stats.methods.append(head.split(b" ", 1)[0].decode())
                    kill = self._kill_at is not None and self.stats.requests >= self._kill_at
                    busy = not kill and (self._busy > 0 or self.stats.requests in self._busy_at)
                    if busy:
                        self._busy = max(0, self._busy - 1)
                        self.stats.busy_sent += 1
                    reset = not kill and not busy and self._resets > 0 and length > self._reset_after
                    if reset:
                        self._resets -= 1
                        self.stats.resets += 1
                if kill:
                    with self._lock:
                        self.stats.kills += 1
                    self.stop()  # synchronously: a later restart() must not be undone
                    _rst(client)
                    return
                if busy:
                    buf = _skip_body(client, buf, length)
                    client.sendall(
                        b"HTTP/1.1 503 The server is busy.\r\nContent-Type: application/xml\r\n"
                        b"x-ms-error-code: ServerBusy\r\n"
                        + f"Content-Length: {len(BUSY)}\r\n\r\n".encode()
                        + BUSY
                    )
                    continue
                if upstream is None:
                    upstream = socket.create_connection(self.upstream)
                    self._track(upstream)
                    threading.Thread(target=self._pump_back, args=(upstream, client), daemon=True).start()
                upstream.sendall(head)
                limit = self._reset_after if reset else length
                buf, _sent = _forward_body(client, upstream, buf, length, limit)
                if reset:
                    _rst(client)
                    _rst(upstream)
                    return
        except OSError:
            return
        finally:
            _rst(client)
            if upstream is not None:
                _rst(upstream)

    def _pump_back(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while data := upstream.recv(65536):
                client.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_WR)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
        if name.strip().lower() == b"transfer-encoding":
            raise OSError("chunked request bodies are not supported by the test proxy")
    return 0


def _skip_body(client: socket.socket, buf: bytes, length: int) -> bytes:
    while len(buf) < length:
        data = client.recv(65536)
        if not data:
            raise OSError("client went away")
        buf += data
    return buf[length:]


def _forward_body(
    client: socket.socket, upstream: socket.socket, buf: bytes, length: int, limit: int
) -> tuple[bytes, int]:
    """Forward up to ``limit`` bytes of a ``length``-byte body; return the leftover buffer."""
    sent = 0
    while sent < limit:
        if not buf:
            buf = client.recv(65536)
            if not buf:
                raise OSError("client went away")
        take = min(len(buf), limit - sent)
        upstream.sendall(buf[:take])
        sent += take
        buf = buf[take:]
    return buf, sent
