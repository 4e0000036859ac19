"""Fake download sites for install tests: a CDN and GitHub, on loopback.

Reusable by any test that runs an installer (host tests, container e2e):

``build_site(root, version, binaries)``
    lays out a site directory exactly as the engine publishes it (origin keys
    from :mod:`kmrelease.urlspace`: ``meta/version``, ``releases/<v>/<file>``,
    ``releases/latest/<file>``, ``install/install.sh`` ...), with ``.sha256``
    files, ``SHA256SUMS`` and ``manifest.json`` in the shape of SPEC §4.
    ``fake_km(version, os, arch)`` gives a tiny shell-script "binary" that
    answers ``--version`` like the real one.

``CdnServer(site)``
    serves the public URL space of SPEC §5 from such a site (paths resolved with
    :func:`kmrelease.urlspace.resolve`, headers from the same table), records
    every request in ``.requests`` and can inject faults per path:
    ``server.faults["/version"] = 503`` (any status) or ``Fault.TRUNCATE``
    (headers with the full Content-Length, half the body, then the connection
    is closed) or ``Fault.STALL`` (half the body, then silence until
    ``server.release.set()``: a download to interrupt with a signal).

``GitHubServer(site)``
    GitHub's release download layout: ``/<owner>/<repo>/releases/download/<v>/<file>``
    answers ``302`` to a second server on another port (like
    objects.githubusercontent.com), and ``/<owner>/<repo>/releases/latest/download/<file>``
    answers ``302`` to the versioned path first, as GitHub does. Files come from
    the site's ``releases/<v>/``; "latest" is the site's ``meta/version`` unless
    ``latest=`` says otherwise. Both hosts record requests (``.requests``,
    ``.asset_host.requests``).

``dead_url()``
    an ``http://127.0.0.1:<port>`` where nothing listens (a CDN that is down).

All servers are context managers (``with CdnServer(site) as cdn: cdn.url``),
bind ``127.0.0.1`` on port 0 by default and serve from daemon threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import http.server
import json
import socket
import socketserver
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from kmrelease.matrix import TARGETS
from kmrelease.urlspace import Kind, headers_of, key_of, resolve

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
GITHUB_REPO = "kilometers-ai/kilometers-cli"


class Fault(enum.Enum):
    TRUNCATE = "truncate"  # full Content-Length, half the body, connection closed
    DROP = "drop"  # close the connection without an answer
    STALL = "stall"  # full Content-Length, half the body, then nothing until ``.release`` is set
    SILENT = "silent"  # read the request, never answer (until ``.release``): a half-dead edge
    TRICKLE = "trickle"  # full Content-Length, then the body one byte every 0.5 s
    HUGE = "huge"  # a Content-Length of 200 MiB, 1 KiB of body, then the connection closed
    UNSIZED = "unsized"  # no Content-Length: the body, then the connection closed


@dataclasses.dataclass(frozen=True)
class Redirect:
    """A fault that answers with a redirect to ``location`` (anywhere, e.g. plain http)."""

    location: str
    status: int = 302


def fake_km(version: str, os: str = "linux", arch: str = "amd64", *, tag: str = "fake") -> bytes:
    """A shell-script stand-in for a km binary: ``km --version`` prints the real format."""
    return (
        "#!/bin/sh\n"
        f"# fake km {version} {os}/{arch} ({tag})\n"
        'if [ "${1:-}" = "--version" ]; then\n'
        f'  echo "km {version} ({tag}, 2026-01-01T00:00:00Z, {os}/{arch})"\n'
        "  exit 0\n"
        "fi\n"
        'echo "fake km: $*" >&2\n'
        "exit 2\n"
    ).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(root: Path, key: str, data: bytes) -> None:
    path = root.joinpath(*key.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def build_site(
    root: Path,
    version: str,
    binaries: Mapping[str, bytes] | None = None,
    *,
    current: bool = True,
    scripts_dir: Path = SCRIPTS,
) -> dict[str, Any]:
    """Publish ``version`` into the site directory ``root``; return its manifest.

    ``binaries`` maps file names (``km-linux-amd64``) to contents; by default every
    target of the matrix gets a :func:`fake_km`. With ``current`` the version
    becomes the one ``/version`` names and ``releases/latest/`` mirrors it.
    """
    if binaries is None:
        binaries = {t.file_name("km"): fake_km(version, t.os, t.arch) for t in TARGETS}
    files: dict[str, bytes] = {}
    artifacts = []
    by_name = {t.file_name("km"): t for t in TARGETS}
    for name in sorted(binaries):
        data = binaries[name]
        files[name] = data
        files[name + ".sha256"] = f"{sha256_hex(data)}  {name}\n".encode()
        target = by_name.get(name)
        artifacts.append(
            {
                "os": target.os if target else None,
                "arch": target.arch if target else None,
                "name": name,
                "size": len(data),
                "sha256": sha256_hex(data),
                "path": key_of(Kind.VERSIONED, version=version, file=name),
            }
        )
    files["SHA256SUMS"] = "".join(f"{sha256_hex(binaries[n])}  {n}\n" for n in sorted(binaries)).encode()
    manifest = {
        "schema": 1,
        "version": version,
        "commit": None,
        "date": "2026-01-01T00:00:00Z",
        "go": "go-fake",
        "artifacts": artifacts,
    }
    files["manifest.json"] = (json.dumps(manifest, indent=2) + "\n").encode()
    for name, data in files.items():
        _write(root, key_of(Kind.VERSIONED, version=version, file=name), data)
    for kind, script in ((Kind.INSTALL_SH, "install.sh"), (Kind.INSTALL_PS1, "install.ps1")):
        if (scripts_dir / script).is_file():
            _write(root, key_of(kind), (scripts_dir / script).read_bytes())
    if current:
        latest = root.joinpath(*key_of(Kind.LATEST, file="x").split("/")[:-1])
        if latest.is_dir():
            for old in latest.iterdir():
                old.unlink()
        for name, data in files.items():
            _write(root, key_of(Kind.LATEST, file=name), data)
        _write(root, key_of(Kind.VERSION), f"{version}\n".encode())
        health = {"status": "ok", "version": version, "published_at": "2026-01-01T00:00:00Z"}
        _write(root, key_of(Kind.HEALTH), (json.dumps(health) + "\n").encode())
    return manifest


def site_file(root: Path, version: str, name: str) -> Path:
    """The path in a site directory of one file of ``releases/<version>/``."""
    return root.joinpath(*key_of(Kind.VERSIONED, version=version, file=name).split("/"))


_HELD: list[socket.socket] = []  # the ports of dead_url(), bound for the whole test run


def dead_url(host: str = "127.0.0.1") -> str:
    """A URL where nothing listens: a connection is refused. The port stays bound (never listening)
    for the rest of the run, so no server started later can be given it and answer there."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    _HELD.append(s)
    return f"http://{host}:{s.getsockname()[1]}"


class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as a CDN edge: the body is a second write after the headers, and Nagle
    # would hold it for the client's delayed ACK (40 ms on a reused connection).
    disable_nagle_algorithm = True
    server_version = "km-fake/1"
    owner: _Server  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.owner._handle(self, head=False)

    def do_HEAD(self) -> None:
        self.owner._handle(self, head=True)


class _Server:
    """A threaded HTTP server on loopback with a request log and per-path faults."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        handler = type("Handler", (_Handler,), {"owner": self})
        self._httpd = _ThreadingServer((host, port), handler)
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self.requests: list[str] = []
        self.faults: dict[str, int | Fault | Redirect] = {}
        self.release = threading.Event()  # ends every Fault.STALL
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> _Server:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def paths(self) -> list[str]:
        """The request paths so far (without query strings)."""
        with self._lock:
            return [urlsplit(p).path for p in self.requests]

    # -- answering -----------------------------------------------------------------

    def _handle(self, h: _Handler, *, head: bool) -> None:
        with self._lock:
            self.requests.append(h.path)
        path = urlsplit(h.path).path
        fault = self.faults.get(path)
        if isinstance(fault, int):
            self.send(h, fault, f"fault {fault}\n".encode(), {"Content-Type": "text/plain"}, head=head)
            return
        if fault is Fault.DROP:
            h.close_connection = True
            return
        if isinstance(fault, Redirect):
            self.send(h, fault.status, b"", {"Location": fault.location}, head=head)
            return
        if fault is Fault.SILENT:
            self.release.wait(120)
            h.close_connection = True
            return
        status, body, headers = self.answer(path)
        if fault in (Fault.TRICKLE, Fault.HUGE) and status == 200:
            self._slow(h, body, headers, fault)
            return
        if fault is Fault.UNSIZED and status == 200:
            h.send_response(200)
            for k, v in headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.close_connection = True
            with contextlib.suppress(OSError):
                h.wfile.write(body)
            return
        if fault in (Fault.TRUNCATE, Fault.STALL) and status == 200:
            h.send_response(200)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            if fault is Fault.STALL:
                self.release.wait(60)
            h.close_connection = True
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send(h, status, body, headers, head=head)

    def answer(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        raise NotImplementedError

    def _slow(self, h: _Handler, body: bytes, headers: Mapping[str, str], fault: Fault) -> None:
        """TRICKLE: the real length, a byte every 0.5 s; HUGE: 200 MiB announced, 1 KiB sent."""
        h.send_response(200)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(200 * 1024 * 1024 if fault is Fault.HUGE else len(body)))
        h.end_headers()
        h.close_connection = True
        with contextlib.suppress(OSError):
            if fault is Fault.HUGE:
                h.wfile.write((body * (1024 // max(len(body), 1) + 1))[:1024])
                h.wfile.flush()
                return
            for i in range(len(body)):
                if self.release.wait(0.5):
                    return
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()

    @staticmethod
    def send(
        h: _Handler, status: int, body: bytes, headers: Mapping[str, str], *, head: bool = False
    ) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)


_NOT_FOUND = (404, b"not found\n", {"Content-Type": "text/plain; charset=utf-8"})


class CdnServer(_Server):
    """The public URL space of SPEC §5, served from a site directory."""

    def __init__(self, site: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.site = site

    def answer(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        resolved = resolve(path)
        if resolved is None:
            return _NOT_FOUND
        file = self.site.joinpath(*resolved.key.split("/"))
        if not file.is_file():
            return _NOT_FOUND
        return 200, file.read_bytes(), resolved.headers


class _AssetHost(_Server):
    """The host GitHub redirects release downloads to (objects.githubusercontent.com)."""

    def __init__(self, site: Path, host: str) -> None:
        super().__init__(host, 0)
        self.site = site

    def answer(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        parts = path.strip("/").split("/")
        # /github-production-release-asset/<v>/<file>
        if len(parts) != 3 or parts[0] != "github-production-release-asset":
            return _NOT_FOUND
        version, name = parts[1], parts[2]
        if resolve(f"/releases/{version}/{name}") is None:
            return _NOT_FOUND
        file = site_file(self.site, version, name)
        if not file.is_file():
            return _NOT_FOUND
        return 200, file.read_bytes(), {"Content-Type": "application/octet-stream"}


class GitHubServer(_Server):
    """GitHub's release download paths with their 302 redirects to another host."""

    def __init__(
        self, site: Path, host: str = "127.0.0.1", port: int = 0, *, latest: str | None = None
    ) -> None:
        super().__init__(host, port)
        self.site = site
        self.latest = latest
        self.asset_host = _AssetHost(site, host)

    def start(self) -> GitHubServer:
        self.asset_host.start()
        super().start()
        return self

    def stop(self) -> None:
        super().stop()
        self.asset_host.stop()

    def _latest(self) -> str | None:
        if self.latest:
            return self.latest
        version = self.site.joinpath(*key_of(Kind.VERSION).split("/"))
        return version.read_text().strip() if version.is_file() else None

    def answer(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        prefix = f"/{GITHUB_REPO}/releases/"
        if not path.startswith(prefix):
            return _NOT_FOUND
        rest = path[len(prefix) :].split("/")
        text = {"Content-Type": "text/html; charset=utf-8"}
        if len(rest) == 3 and rest[0] == "latest" and rest[1] == "download":
            latest = self._latest()
            if latest is None:
                return _NOT_FOUND
            location = f"{self.url}{prefix}download/{latest}/{rest[2]}"
            return 302, b"", {**text, "Location": location}
        if len(rest) == 3 and rest[0] == "download":
            version, name = rest[1], rest[2]
            if (
                resolve(f"/releases/{version}/{name}") is None
                or not site_file(self.site, version, name).is_file()
            ):
                return _NOT_FOUND
            location = (
                f"{self.asset_host.url}/github-production-release-asset/{version}/{name}"
                "?X-Amz-Signature=fake&response-content-disposition=attachment"
            )
            return 302, b"", {**text, "Location": location}
        return _NOT_FOUND


def all_paths(servers: Iterable[_Server]) -> list[str]:
    """Every request path that any of the servers received."""
    return [p for s in servers for p in s.paths()]


def content_headers(kind: Kind, name: str = "") -> dict[str, str]:
    """The headers the CDN sends for an object (re-exported for tests)."""
    return headers_of(kind, name)
