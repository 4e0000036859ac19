"""Bounded HTTP reads for the engine's clients of servers it does not control (SPEC §8, §9).

Every wait is bounded: a connect timeout, a stall timeout (no byte for ``stall`` seconds), and
an overall deadline per response that scales with its size (``total`` + size ÷ ``min_rate``).
Bodies are read in pieces as they arrive (``read1``: a server trickling one byte at a time
cannot hold a read open past the deadline) and capped; redirects are followed by hand, at most
``max_redirects``, and only to ``https`` or to ``http`` on a loopback host. Whatever a server
sent reaches a message only through :func:`excerpt` (short, printable ASCII, escapes shown).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

from .errors import KmError


@dataclass(frozen=True)
class Limits:
    connect: float = 5.0  # seconds to connect
    stall: float = 15.0  # seconds without a byte, at any point of a response
    total: float = 30.0  # overall seconds per response, plus size ÷ min_rate
    min_rate: int = 256 * 1024  # bytes/s: slower than this over a whole body is a stall too
    max_redirects: int = 3
    attempts: int = 2  # tries of one request when the server cannot be reached


class Unreachable(KmError):
    """The server did not answer within the limits (connect, stall, deadline)."""


class TooLarge(KmError):
    """A body larger than its cap."""


class BadRedirect(KmError):
    """A redirect to a scheme/host the rules refuse, or too many of them."""


def excerpt(text: str | bytes, limit: int = 60, *, quote: bool = True) -> str:
    """At most ``limit`` characters of server text, printable ASCII only (others escaped): no
    terminal escape sequence or control character ever reaches the user's terminal."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    shown = text[:limit].encode("ascii", "backslashreplace").decode("ascii")
    shown = "".join(c if " " <= c <= "~" else f"\\x{ord(c):02x}" for c in shown)
    shown += "..." if len(text) > limit else ""
    return f"'{shown}'" if quote else shown


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def redirect_allowed(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or ""))


def open_bounded(session: requests.Session, url: str, limits: Limits) -> requests.Response:
    """GET ``url`` (streamed), following allowed redirects; bounded connect and header waits."""
    for _ in range(limits.max_redirects + 1):
        resp = _get(session, url, limits)
        if not resp.is_redirect:
            return resp
        location = resp.headers.get("Location", "")
        resp.close()
        target = urljoin(url, location)
        if not redirect_allowed(target):
            raise BadRedirect(
                f"{url} redirects to {excerpt(target, 80)}: refused (only https, or http on loopback)"
            )
        url = target
    raise BadRedirect(f"{url}: more than {limits.max_redirects} redirects")


def _get(session: requests.Session, url: str, limits: Limits) -> requests.Response:
    last = ""
    for attempt in range(limits.attempts):
        try:
            return session.get(
                url, stream=True, allow_redirects=False, timeout=(limits.connect, limits.stall)
            )
        except requests.ConnectTimeout:
            last = f"no connection within {limits.connect:g}s"
        except requests.ReadTimeout:
            last = f"connected, but no answer within {limits.stall:g}s"
        except requests.ConnectionError:
            last = "connection failed"
        except requests.RequestException as exc:
            last = type(exc).__name__
        if attempt + 1 < limits.attempts:
            time.sleep(min(0.5 * 2**attempt, 2.0))
    raise Unreachable(f"cannot reach {url}: {last} ({limits.attempts} attempts)")


def read_all(resp: requests.Response, cap: int, limits: Limits) -> requests.Response:
    """Read a streamed response's whole body within the limits; ``resp.content`` holds it after."""
    resp._content = b"".join(read_capped(resp, cap, limits))
    return resp


def read_capped(resp: requests.Response, cap: int, limits: Limits) -> Iterator[bytes]:
    """The body in pieces as they arrive; raises TooLarge past ``cap`` bytes and Unreachable on a
    stall or when the overall deadline (scaled by the announced size) passes."""
    url = resp.url
    announced = resp.headers.get("Content-Length", "")
    size = int(announced) if announced.isascii() and announced.isdigit() else 0
    if size > cap:
        resp.close()
        raise TooLarge(f"{url}: {size} bytes announced, more than the {cap} allowed")
    deadline = time.monotonic() + limits.total + min(size or cap, cap) / limits.min_rate
    got = 0
    try:
        while True:
            try:
                chunk = resp.raw.read1(1 << 18, decode_content=True)  # gzip from a CDN, bounded
            except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
                raise Unreachable(f"{url}: stalled, no data for {limits.stall:g}s") from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise Unreachable(f"{url}: the download broke off ({type(exc).__name__})") from None
            if not chunk:
                return
            got += len(chunk)
            if got > cap:
                raise TooLarge(f"{url}: larger than the {cap} bytes allowed")
            if time.monotonic() > deadline:
                raise Unreachable(f"{url}: too slow, {got} bytes in {limits.total:g}s and more")
            yield chunk
    finally:
        resp.close()
