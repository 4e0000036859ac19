"""`inv serve` under abuse (issue 13 point 5), for both backends (a site, and a blob endpoint
relayed with --origin): traversal in every encoding, over-long URLs and heads, slow clients,
many connections, HEAD, Range. Bounded request loops on loopback only."""

from __future__ import annotations

import functools
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kmrelease.destinations.local import LocalSite
from kmrelease.edgeserver import EdgeLimits
from kmrelease.serve import Backend, OriginBackend, SiteBackend, make_server
from kmrelease.ui import Reporter
from tests.support.fake_release import make_dist, make_scripts
from tests.support.releases import publish

SECRET = b"top secret: must never be served"
LIMITS = EdgeLimits(workers=4, max_connections=64, head_timeout=1.0, idle_timeout=1.5, write_timeout=5)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("edge")
    (root / "secret.txt").write_bytes(SECRET)  # beside the site, as /etc/passwd is beside /
    rel = make_dist(root / "dist", "v1.0.0")
    publish(rel, LocalSite(root / "site"), Reporter(quiet=True), scripts=make_scripts(root))
    (root / "site" / "secret.txt").write_bytes(SECRET)  # inside the site, but no route leads there
    return root / "site"


@pytest.fixture(scope="module")
def blob_endpoint(site: Path) -> Iterator[str]:
    """A plain static server of the site's containers: GET /<container>/<blob>, as a blob endpoint."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["site", "origin"])
def edge(request: pytest.FixtureRequest, site: Path) -> Iterator[tuple[str, int]]:
    backend: Backend = (
        SiteBackend(site)
        if request.param == "site"
        else OriginBackend(request.getfixturevalue("blob_endpoint"))
    )
    server = make_server(backend, limits=LIMITS)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", int(server.server_address[1])
    server.shutdown()
    server.server_close()


def connect(edge: tuple[str, int]) -> socket.socket:
    return socket.create_connection(edge, timeout=5)


def exchange(edge: tuple[str, int], raw: bytes, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    with connect(edge) as sock:
        sock.sendall(raw)
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        return resp.status, dict(resp.getheaders()), resp.read()


def get(
    edge: tuple[str, int], target: str, *headers: str, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    head = "".join(f"{h}\r\n" for h in headers)
    return exchange(
        edge,
        f"{method} {target} HTTP/1.1\r\nHost: x\r\n{head}Connection: close\r\n\r\n".encode("latin-1"),
        method,
    )


BINARY = "/releases/v1.0.0/km-linux-amd64"


def binary(site: Path) -> bytes:
    return (site / "releases" / "v1.0.0" / "km-linux-amd64").read_bytes()


# --- traversal ------------------------------------------------------------------------

TRAVERSALS = [
    "/releases/../../etc/passwd",
    "/releases/../secret.txt",
    "/../secret.txt",
    "/releases/%2e%2e/%2e%2e/etc/passwd",
    "/releases/v1.0.0/..%2f..%2fsecret.txt",
    "/releases/v1.0.0/%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt",
    "/releases/v1.0.0/.%2e/.%2e/.%2e/secret.txt",
    "/releases/%2e%2e%2f%2e%2e%2fsecret.txt",
    "/releases/v1.0.0/..\\..\\..\\secret.txt",
    "/releases/v1.0.0/%5c..%5c..%5csecret.txt",
    "/releases/latest/km-linux-amd64%00.txt",
    "/releases/latest/km-linux-amd64\x00",
    "/secret.txt",
    "//secret.txt",
    "/releases//secret.txt",
    "/releases/v1.0.0/%252e%252e/secret.txt",
    "/releases/%c0%ae%c0%ae/secret.txt",
    "http://x/../secret.txt",
    "/releases/v1.0.0/.sha256",
    "/releases/v1.0.0/",
]


@pytest.mark.parametrize("target", TRAVERSALS, ids=ascii)
def test_traversal_in_every_encoding_is_refused(edge: tuple[str, int], target: str) -> None:
    status, _, body = get(edge, target)
    assert status in (400, 404), status
    assert SECRET not in body and b"root:" not in body


# --- over-long and malformed requests ------------------------------------------------


def test_an_over_long_url_is_414(edge: tuple[str, int]) -> None:
    status, headers, _ = get(edge, "/releases/v1.0.0/" + "a" * 9000)
    assert status == 414 and headers["Connection"] == "close"


def test_an_over_long_header_is_431(edge: tuple[str, int]) -> None:
    status, _, _ = get(edge, "/version", "X-Big: " + "b" * 20000)
    assert status == 431


def test_too_many_headers_is_431(edge: tuple[str, int]) -> None:
    status, _, _ = get(edge, "/version", *(f"X-{i}: {i}" for i in range(150)))
    assert status == 431


def test_garbage_is_400(edge: tuple[str, int]) -> None:
    status, _, _ = exchange(edge, b"\x16\x03\x01\x02\x00 nonsense HTTP/9\r\n\r\n")
    assert status == 400


def test_other_methods_are_405_and_a_body_closes_the_connection(edge: tuple[str, int]) -> None:
    status, headers, _ = exchange(
        edge, b"POST /version HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    )
    assert status == 405 and headers["Allow"] == "GET, HEAD"


# --- HEAD and Range -------------------------------------------------------------------


def test_head_has_the_headers_and_no_body(edge: tuple[str, int], site: Path) -> None:
    status, headers, body = get(edge, BINARY, method="HEAD")
    assert status == 200 and body == b""
    assert headers["Content-Length"] == str(len(binary(site))) and headers["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [("bytes=0-9", 0, 9), ("bytes=100-", 100, None), ("bytes=-5", -5, None), ("bytes=5-999999999", 5, None)],
)
def test_a_single_range_is_206(
    edge: tuple[str, int], site: Path, spec: str, start: int, end: int | None
) -> None:
    data = binary(site)
    want = data[start:] if end is None else data[start : end + 1]
    status, headers, body = get(edge, BINARY, f"Range: {spec}")
    assert status == 206 and body == want
    first = start if start >= 0 else len(data) + start
    assert headers["Content-Range"] == f"bytes {first}-{first + len(want) - 1}/{len(data)}"
    assert headers["Content-Length"] == str(len(want))
    status, headers, body = get(edge, BINARY, f"Range: {spec}", method="HEAD")
    assert status == 206 and body == b"" and headers["Content-Length"] == str(len(want))


@pytest.mark.parametrize("spec", ["bytes=999999999-", "bytes=-0"])
def test_an_unsatisfiable_range_is_416(edge: tuple[str, int], site: Path, spec: str) -> None:
    status, headers, _ = get(edge, BINARY, f"Range: {spec}")
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(binary(site))}"


@pytest.mark.parametrize("spec", ["bytes=0-1,5-6", "bytes=9-2", "items=0-1", "bytes=x-y"])
def test_other_ranges_get_the_whole_file(edge: tuple[str, int], site: Path, spec: str) -> None:
    status, _, body = get(edge, BINARY, f"Range: {spec}")
    assert status == 200 and body == binary(site)


def test_a_range_of_nothing_is_404(edge: tuple[str, int]) -> None:
    assert get(edge, "/releases/v9.9.9/km-linux-amd64", "Range: bytes=0-1")[0] == 404


def test_pipelined_requests_are_answered_in_order(edge: tuple[str, int]) -> None:
    with connect(edge) as sock:
        two = b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n"
        two += b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        sock.sendall(two)
        first = http.client.HTTPResponse(sock)
        first.begin()
        assert first.read() == b"v1.0.0\n"
        second = http.client.HTTPResponse(sock)
        second.begin()
        assert b'"version": "v1.0.0"' in second.read()


# --- slow clients and many connections -----------------------------------------------


def test_slowloris_is_cut_and_others_are_served_meanwhile(edge: tuple[str, int]) -> None:
    slow = [connect(edge) for _ in range(40)]  # 10 × the workers
    for s in slow:
        s.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
    started = time.monotonic()
    for _ in range(5):
        assert get(edge, "/version")[0] == 200
    assert time.monotonic() - started < 2, "served while the slow clients hang on"
    for s in slow:
        s.settimeout(5)
        assert s.recv(100) == b"", "closed by the server"  # within head_timeout (1 s)
        s.close()
    assert time.monotonic() - started < 4


def test_a_trickled_head_is_cut_at_the_head_timeout(edge: tuple[str, int]) -> None:
    with connect(edge) as s:
        started = time.monotonic()
        closed = False
        for ch in b"GET /version HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            try:
                s.sendall(bytes([ch]))
            except OSError:
                closed = True
                break
            time.sleep(0.05)
            if time.monotonic() - started > 3:
                break
        if not closed:
            s.settimeout(3)
            try:
                closed = s.recv(100) == b""
            except OSError:
                closed = True
        assert closed and time.monotonic() - started < 3.5


def test_an_idle_keep_alive_connection_is_closed(edge: tuple[str, int]) -> None:
    with connect(edge) as s:
        s.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        resp = http.client.HTTPResponse(s)
        resp.begin()
        resp.read()
        started = time.monotonic()
        s.settimeout(5)
        assert s.recv(100) == b""
        assert 1.0 < time.monotonic() - started < 3


def test_connections_past_the_cap_are_refused_and_threads_stay_bounded(edge: tuple[str, int]) -> None:
    before = threading.active_count()
    held = [connect(edge) for _ in range(LIMITS.max_connections + 20)]
    try:
        time.sleep(0.3)
        refused = 0
        for s in held[-20:]:
            s.settimeout(2)
            try:
                data = s.recv(200)
            except TimeoutError:
                continue
            refused += data.startswith(b"HTTP/1.1 503") or data == b""
        assert refused >= 15
        assert threading.active_count() <= before + LIMITS.workers
    finally:
        for s in held:
            s.close()
    time.sleep(0.2)
    assert get(edge, "/version")[0] == 200


def test_many_concurrent_clients_all_get_answers(edge: tuple[str, int]) -> None:
    results: list[int] = []

    def client() -> None:
        for _ in range(10):
            results.append(get(edge, "/version")[0])

    threads = [threading.Thread(target=client) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == [200] * 200
