"""The local edge's access log (SPEC §15): one JSON line per request, Front Door's field names.

``inv serve --access-log FILE`` appends a line per GET/HEAD answered, with the fields of
Azure Front Door's access log that ``inv metrics`` reads (``time``, ``httpMethod``,
``requestUri``, ``httpStatusCode``, ``responseBytes``, ``cacheStatus``, ``userAgent``,
``clientCountry``, ``timeToFirstByte``, ``timeTaken``) and the client address only as
``clientIpHash``: a salted SHA-256, the salt kept in the project cache
(``.cache/access-log-salt``), so a client can be counted but never identified.

The local edge has no cache; ``cacheStatus`` is what a CDN in front of it would report
(:class:`EdgeCache`): the first answer of a cacheable object is a ``MISS``, every answer
(whole or a range) within that object's max-age after it a ``HIT``; ``no-cache`` objects are ``UNCACHEABLE``;
paths outside the URL space ``N/A``. ``clientCountry`` is empty: a loopback edge knows no
geography.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

from .errors import KmError
from .urlspace import OBJECT, resolve

SALT_FILE = "access-log-salt"
HASH_CHARS = 16  # 64 bits of the salted SHA-256: counts clients, identifies none
MAX_UA = 512
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](?::[0-9]{1,5})?$")


def client_hash(salt: str, address: str) -> str:
    """The salted hash of a client address, as KQL's ``hash_sha256(strcat(salt, ip))`` cut to 16."""
    return hashlib.sha256((salt + address).encode()).hexdigest()[:HASH_CHARS]


def load_salt(cache_dir: Path) -> str:
    """The project's salt, made once (0600) under ``cache_dir``; never printed."""
    path = cache_dir / SALT_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        raise KmError(f"cannot read the access-log salt {path}: {exc}") from None
    salt = secrets.token_hex(32)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_salt(cache_dir)  # another process made it first
    except OSError as exc:
        raise KmError(f"cannot create the access-log salt {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(salt + "\n")
    return salt


def iso_time(epoch: float) -> str:
    """RFC 3339 UTC with milliseconds, as Front Door writes ``time``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class EdgeCache:
    """The cache status a CDN in front of this edge would report (labels only: no bodies kept)."""

    def __init__(self) -> None:
        self._filled: dict[str, float] = {}
        self._lock = threading.Lock()

    def status(self, path: str, code: int, now: float) -> str:
        resolved = resolve(path)
        if resolved is None:
            return "N/A"
        max_age = OBJECT[resolved.kind].max_age
        if max_age is None:
            return "UNCACHEABLE"
        if code not in (200, 206):  # a range is served from the cached whole
            return "MISS"
        with self._lock:
            filled = self._filled.get(resolved.key)
            if filled is not None and now - filled < max_age:
                return "HIT"
            self._filled[resolved.key] = now
        return "MISS"


class _Meter:
    """Wraps a handler's ``wfile``: bytes written, time of the first byte, the status line."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.written = 0
        self.first: float | None = None
        self.status = 0

    def write(self, data: bytes) -> int:
        if self.first is None and data:
            self.first = time.monotonic()
            line = bytes(data[:32]).split(b"\r\n", 1)[0].split(b" ")
            if len(line) >= 2 and line[1].isdigit():
                self.status = int(line[1])
        n: int = self.raw.write(data)
        self.written += len(data)
        return n

    def flush(self) -> None:
        self.raw.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self.raw, name)


def count_sent(wfile: object, n: int) -> None:
    """Bytes a handler sent past its ``wfile`` (``sendfile``), counted by the meter if there is one."""
    if isinstance(wfile, _Meter):
        wfile.written += n


class AccessLog:
    """Appends one JSON line per request to ``path`` (created with its directory)."""

    def __init__(self, path: Path, salt: str) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh: IO[str] = path.open("a", encoding="utf-8", buffering=1)
        except OSError as exc:
            raise KmError(f"cannot open the access log {path}: {exc.strerror or exc}") from None
        self.path = path
        self._salt = salt
        self._lock = threading.Lock()
        self.cache = EdgeCache()

    @contextmanager
    def observe(self, handler: BaseHTTPRequestHandler) -> Iterator[None]:
        """Around one answer: meter the bytes sent, then write the line."""
        started = time.monotonic()
        meter = _Meter(handler.wfile)
        handler.wfile = meter  # type: ignore[assignment]
        try:
            yield
        finally:
            handler.wfile = meter.raw
            self._write(handler, meter, started)

    def _write(self, handler: BaseHTTPRequestHandler, meter: _Meter, started: float) -> None:
        ended = time.monotonic()
        host = handler.headers.get("Host") or ""
        if not _HOST.match(host):  # the client's word: never let it reshape requestUri
            host = "localhost"
        ua = handler.headers.get("User-Agent") or ""
        path = unquote(handler.path.split("?", 1)[0])
        ip = str(handler.client_address[0])
        ttfb = (meter.first if meter.first is not None else ended) - started
        with self._lock:
            now = time.time()
            record = {
                "time": iso_time(now),
                "httpMethod": handler.command,
                "requestUri": f"http://{host}{handler.path}",
                "hostName": host,
                "httpStatusCode": meter.status,
                "responseBytes": meter.written,
                "cacheStatus": self.cache.status(path, meter.status, now),
                "userAgent": ua[:MAX_UA],
                "clientCountry": "",
                "timeToFirstByte": round(ttfb, 6),
                "timeTaken": round(ended - started, 6),
                "clientIpHash": client_hash(self._salt, ip),
            }
            with suppress(OSError, ValueError):  # a full disk (or a closed log) must not break downloads
                self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")

    def close(self) -> None:
        with self._lock:
            self._fh.close()


class NoLog:
    """No access log: :meth:`observe` does nothing."""

    @contextmanager
    def observe(self, handler: BaseHTTPRequestHandler) -> Iterator[None]:
        yield

    def close(self) -> None:
        pass


def open_log(path: Path | None, cache_dir: Path) -> AccessLog | NoLog:
    """The access log at ``path`` (salt from ``cache_dir``), or none when ``path`` is None."""
    if path is None:
        return NoLog()
    return AccessLog(path, load_salt(cache_dir))


def project_root() -> Path:
    """The project whose ``logs/`` and ``.cache/`` the edge uses."""
    from .config import find_config

    return find_config()[0]


def default_log_path() -> Path:
    return project_root() / "logs" / "access.jsonl"


def log_for(option: str) -> AccessLog | NoLog:
    """``inv serve --access-log``: empty → the default file, ``off`` → no log, else that file."""
    if option == "off":
        return NoLog()
    path = Path(option).absolute() if option else default_log_path()
    return open_log(path, project_root() / ".cache")
