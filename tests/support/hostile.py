"""Misbehaving HTTP servers on loopback, for the bounded-wait tests of the engine's clients.

Each is a raw socket server (threads, daemon), so that it can misbehave below HTTP: accept and
never answer, answer headers then stall, trickle a body one byte at a time, send a huge body,
redirect anywhere. ``Behaviour`` is called with the request path and the connected socket.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

Behaviour = Callable[[str, socket.socket, threading.Event], None]


class HostileServer:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            path = head.split(b" ", 2)[1].decode("latin-1") if head.count(b" ") >= 2 else "/"
            self.behaviour(path, conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()


def black_hole(path: str, conn: socket.socket, stop: threading.Event) -> None:
    """Accept the request and never answer."""
    stop.wait(60)


def stall_after_headers(path: str, conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\nv1.")
    stop.wait(60)


def trickle(interval: float = 0.2, size: int = 100) -> Behaviour:
    """Headers at once, then the body one byte every ``interval`` seconds."""

    def behave(path: str, conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
        for _ in range(size):
            if stop.wait(interval):
                return
            conn.sendall(b"v")

    return behave


def huge(size: int, *, announce: bool = True) -> Behaviour:
    """A body of ``size`` bytes, sent as fast as the client takes it (announced or not)."""

    def behave(path: str, conn: socket.socket, stop: threading.Event) -> None:
        length = f"Content-Length: {size}\r\n" if announce else "Connection: close\r\n"
        conn.sendall(f"HTTP/1.1 200 OK\r\n{length}Content-Type: text/plain; charset=utf-8\r\n\r\n".encode())
        block = b"v" * 65536
        sent = 0
        while sent < size and not stop.is_set():
            conn.sendall(block[: size - sent])
            sent += len(block)

    return behave


def redirect(location: str) -> Behaviour:
    def behave(path: str, conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode())

    return behave


def body(data: bytes, status: str = "200 OK", headers: str = "") -> Behaviour:
    def behave(path: str, conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(
            f"HTTP/1.1 {status}\r\nContent-Length: {len(data)}\r\n{headers}\r\n".encode("latin-1") + data
        )

    return behave


def elapsed(fn: Callable[[], object]) -> tuple[float, BaseException | None]:
    """Run ``fn``; how long it took and what it raised."""
    start = time.monotonic()
    try:
        fn()
    except BaseException as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None
