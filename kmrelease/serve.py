"""The local edge: the routes and headers of SPEC §5 in front of a site or a blob endpoint.

Both backends answer by origin key (``urlspace.resolve``), so this server, the
publishers and Front Door share one mapping. A site backend takes the headers
from the URL-space table; an origin backend relays those stored on the blobs.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import IO, BinaryIO, Protocol, cast
from urllib.parse import unquote, urlsplit

import requests

from .accesslog import AccessLog, NoLog, count_sent
from .byterange import UNSATISFIABLE, parse_range
from .edgeserver import BoundedHTTPServer, EdgeLimits
from .errors import KmError
from .urlspace import resolve

RELAYED = ("Content-Type", "Cache-Control", "Content-Length", "Content-MD5", "ETag", "Last-Modified")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: IO[bytes] | None = None
    closers: list[object] = field(default_factory=list)
    limit: int | None = None  # bytes of ``body`` to send (a range), None: all of it


class Backend(Protocol):
    def fetch(self, key: str, resolved_headers: dict[str, str], *, head: bool) -> Answer | None:
        """The object at ``key``, or None when there is none."""


class SiteBackend:
    def __init__(self, root: Path) -> None:
        self.root = root

    def fetch(self, key: str, resolved_headers: dict[str, str], *, head: bool) -> Answer | None:
        path = self.root.joinpath(*key.split("/"))
        try:
            fh = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        size = path.stat().st_size
        headers = {**resolved_headers, "Content-Length": str(size)}
        if head:
            fh.close()
            return Answer(200, headers)
        return Answer(200, headers, fh)


class OriginBackend:
    """Relay a blob endpoint (``http://127.0.0.1:10000/devstoreaccount1``, ``https://x.blob.core.windows.net``)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin.rstrip("/")
        self._local = threading.local()

    @property
    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
        return s

    def fetch(self, key: str, resolved_headers: dict[str, str], *, head: bool) -> Answer | None:
        url = f"{self.origin}/{key}"
        try:
            resp = self._session.request("HEAD" if head else "GET", url, stream=True, timeout=30)
        except requests.RequestException:
            return Answer(502, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"})
        if resp.status_code == 404:
            resp.close()
            return None
        if resp.status_code != 200:
            resp.close()
            return Answer(502, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"})
        headers = {h: resp.headers[h] for h in RELAYED if h in resp.headers}
        if head:
            resp.close()
            return Answer(200, headers)
        body = cast(IO[bytes], resp.raw)
        return Answer(200, headers, body, [resp])


def _handler(backend: Backend, access: AccessLog | NoLog) -> type[BaseHTTPRequestHandler]:
    class EdgeHandler(BaseHTTPRequestHandler):
        def version_string(self) -> str:
            return "km-edge"

        protocol_version = "HTTP/1.1"
        default_request_version = "HTTP/1.0"  # an error about a malformed request line has a status line
        disable_nagle_algorithm = True  # headers and a small body in separate writes: no 40 ms stalls

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, head: bool) -> None:
            with access.observe(self):  # the access log of SPEC §15
                self._answer_now(head)

        def _answer_now(self, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)  # apt asks for %7e and %2b in .deb names
            resolved = resolve(path)
            answer = backend.fetch(resolved.key, resolved.headers, head=head) if resolved else None
            if answer is not None and answer.status == 200:
                answer = with_range(answer, self.headers.get("Range"), self.headers.get("If-Range"))
            if answer is not None and answer.status == 416:
                self._send(answer, head, b"range not satisfiable\n")
                return
            if answer is None:
                answer = Answer(
                    404, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}
                )
                body = b"not found\n"
                answer.headers["Content-Length"] = str(len(body))
                self._send(answer, head, body)
                return
            self._send(answer, head, None)

        def _send(self, answer: Answer, head: bool, small: bytes | None) -> None:
            if answer.status >= 500 and small is None:
                small = b"bad gateway\n"
            if small is not None:
                answer.headers["Content-Length"] = str(len(small))
            self.send_response(answer.status)
            for k, v in answer.headers.items():
                self.send_header(k, v)
            self.end_headers()
            try:
                if not head:
                    if small is not None:
                        self.wfile.write(small)
                    elif answer.body is not None:
                        _send_body(self, answer.body, answer.limit)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            finally:
                if answer.body is not None:
                    answer.body.close()
                for c in answer.closers:
                    c.close()  # type: ignore[attr-defined]

        def do_GET(self) -> None:
            self._answer(head=False)

        def do_HEAD(self) -> None:
            self._answer(head=True)

        def _refuse(self) -> None:
            body = b"method not allowed\n"
            self.send_response(405)
            self.send_header("Allow", "GET, HEAD")
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    return EdgeHandler


def with_range(answer: Answer, header: str | None, if_range: str | None) -> Answer:
    """A 200 answer narrowed to the one byte range asked for (206), refused (416), or whole."""
    answer.headers["Accept-Ranges"] = "bytes"
    size_text = answer.headers.get("Content-Length", "")
    if not header or not (size_text.isascii() and size_text.isdigit()):
        return answer
    size = int(size_text)
    rng = parse_range(header, size, if_range=if_range)
    if rng is None:
        return answer
    if rng is UNSATISFIABLE:
        _close(answer)
        return Answer(416, {**_PLAIN, "Content-Range": f"bytes */{size}"})
    if answer.body is not None:
        _skip(answer.body, rng.start)
    headers = {**answer.headers, "Content-Length": str(rng.length), "Content-Range": rng.content_range(size)}
    return Answer(206, headers, answer.body, answer.closers, rng.length)


_PLAIN = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}


def _skip(body: IO[bytes], amount: int) -> None:
    if body.seekable():
        body.seek(amount)
        return
    while amount > 0:  # a relayed stream: read past the start
        chunk = body.read(min(amount, 1 << 16))
        if not chunk:
            return
        amount -= len(chunk)


def _send_body(handler: BaseHTTPRequestHandler, body: IO[bytes], limit: int | None) -> None:
    """A site's file goes from the page cache to the socket (``sendfile``: no copy through Python,
    each send still bounded by the socket's write timeout); anything else (a relayed origin's
    stream) is copied in pieces."""
    if not _regular_file(body):
        _copy(body, handler.wfile, limit)
        return
    handler.wfile.flush()
    sent = handler.connection.sendfile(body, body.tell(), limit)
    count_sent(handler.wfile, sent)


def _regular_file(body: IO[bytes]) -> bool:
    if not isinstance(body, io.BufferedReader):
        return False
    try:
        return stat.S_ISREG(os.fstat(body.fileno()).st_mode)
    except (OSError, ValueError):
        return False


def _copy(body: IO[bytes], out: BinaryIO | io.BufferedIOBase, limit: int | None) -> None:
    if limit is None:
        shutil.copyfileobj(body, out, 1 << 16)
        return
    while limit > 0:
        chunk = body.read(min(limit, 1 << 16))
        if not chunk:
            return
        out.write(chunk)
        limit -= len(chunk)


def _close(answer: Answer) -> None:
    if answer.body is not None:
        answer.body.close()
    for c in answer.closers:
        c.close()  # type: ignore[attr-defined]


def make_server(
    backend: Backend,
    host: str = "127.0.0.1",
    port: int = 0,
    access: AccessLog | NoLog | None = None,
    limits: EdgeLimits | None = None,
) -> BoundedHTTPServer:
    """The edge: bounded threads, connections, head sizes and waits (:mod:`kmrelease.edgeserver`)."""
    try:
        return BoundedHTTPServer((host, port), _handler(backend, access or NoLog()), limits)
    except OSError as exc:
        raise KmError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def backend_for(site: Path | None, origin: str | None) -> Backend:
    if site is not None and origin:
        raise KmError("give either --site or --origin, not both")
    if origin:
        if not origin.startswith(("http://", "https://")):
            raise KmError(f"--origin must be an http(s) URL of a blob endpoint, not {origin!r}")
        return OriginBackend(origin)
    assert site is not None
    if not site.is_dir():
        raise KmError(f"site directory {site} does not exist: run `inv release` first")
    return SiteBackend(site)


@contextmanager
def running(
    backend: Backend, host: str = "127.0.0.1", port: int = 0, access: AccessLog | NoLog | None = None
) -> Iterator[str]:
    """Serve in a background thread; yields the base URL."""
    server = make_server(backend, host, port, access)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        h, p = str(server.server_address[0]), server.server_address[1]
        yield f"http://{h if ':' not in h else f'[{h}]'}:{p}"
    finally:
        server.shutdown()
        server.server_close()
