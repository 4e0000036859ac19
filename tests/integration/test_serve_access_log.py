"""``inv serve --access-log``: the task as a user runs it writes the log ``inv metrics`` reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.sites import build_site

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def inv_serve(site: Path, *args: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "serve", "--site", str(site), "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CI": "true"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "serving ... on http://127.0.0.1:PORT/ (Ctrl-C stops)"
        assert " on http://" in line, line + (proc.stderr.read() if proc.stderr else "")
        yield line.split(" on ", 1)[1].split("/ ", 1)[0]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def settled(log: Path, quiet: float = 0.3, limit: float = 15.0) -> int:
    """The log's line count once no line came for ``quiet`` seconds: the edge writes a line
    after the last byte of its answer, so a client can be done before the line is."""
    import time

    deadline = time.monotonic() + limit
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = log.read_text().count("\n") if log.exists() else 0
        if now != count:
            count, since = now, time.monotonic()
        elif count > 0 and time.monotonic() - since >= quiet:
            return count
        time.sleep(0.05)
    return count


def get(url: str, agent: str = "curl/8.5.0") -> int:
    req = urllib.request.Request(url, headers={"User-Agent": agent})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_inv_serve_writes_the_access_log_and_inv_metrics_reads_it(tmp_path: Path) -> None:
    site = tmp_path / "site"
    build_site(site, "v1.2.3")
    log = tmp_path / "logs" / "access.jsonl"
    with inv_serve(site, "--access-log", str(log)) as base:
        assert get(base + "/version", agent="km/v1.2.2") == 200
        assert get(base + "/releases/v1.2.3/km-linux-amd64") == 200
        assert get(base + "/releases/v9.9.9/km-linux-amd64") == 404
        assert settled(log) == 3
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [(x["httpMethod"], x["httpStatusCode"], x["cacheStatus"]) for x in lines] == [
        ("GET", 200, "MISS"),
        ("GET", 200, "MISS"),
        ("GET", 404, "MISS"),
    ]
    assert all(x["requestUri"].startswith(base) and "127.0.0.1" not in x["clientIpHash"] for x in lines)
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "metrics", "--log", str(log), "--since", "1h", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(proc.stdout)
    assert report["update_checks"] == 1 and report["requests"] == 3
    assert report["downloads"] == [{"version": "v1.2.3", "os": "linux", "arch": "amd64", "count": 1}]


def test_access_log_off_writes_nothing_and_an_unwritable_log_is_one_line(tmp_path: Path) -> None:
    site = tmp_path / "site"
    build_site(site, "v1.2.3")
    with inv_serve(site, "--access-log", "off") as base:
        assert get(base + "/version") == 200
    assert not (tmp_path / "logs").exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    serve = [sys.executable, "-m", "invoke", "serve", "--site", str(site), "--port", "0"]
    proc = subprocess.run(
        [*serve, "--access-log", str(blocker / "access.jsonl")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith(f"error: cannot open the access log {blocker / 'access.jsonl'}: ")


def test_a_forged_host_header_cannot_reshape_the_logged_uri(tmp_path: Path) -> None:
    import http.client

    from kmrelease.accesslog import AccessLog
    from kmrelease.serve import SiteBackend, running

    site = tmp_path / "site"
    build_site(site, "v1.2.3")
    log = AccessLog(tmp_path / "access.jsonl", "salt")
    with running(SiteBackend(site), access=log) as base:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/version", headers={"Host": "x/releases/v1.2.3/km-linux-amd64?"})
        conn.getresponse().read()
        conn.close()
        settled(log.path)
    log.close()
    line = json.loads(log.path.read_text())
    assert line["requestUri"] == "http://localhost/version" and line["hostName"] == "localhost"


def _raw_get(base: str, path: str, *headers: str) -> bytes:
    """Every byte of one answer, status line and headers included (the connection closed after)."""
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(base)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        extra = "".join(h + "\r\n" for h in headers)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: get.example\r\n{extra}Connection: close\r\n\r\n".encode())
        got = bytearray()
        while chunk := s.recv(1 << 16):
            got += chunk
    return bytes(got)


def test_response_bytes_count_every_byte_sent_of_a_file_a_range_and_a_small_answer(tmp_path: Path) -> None:
    """A site's files leave by ``sendfile``, past the log's meter: still counted, exactly."""
    from kmrelease.accesslog import open_log
    from kmrelease.serve import SiteBackend, running

    site = tmp_path / "site"
    build_site(site, "v1.2.3")
    binary = (site / "releases" / "v1.2.3" / "km-linux-amd64").read_bytes()
    log = tmp_path / "logs" / "access.jsonl"
    access = open_log(log, tmp_path / "cache")
    path = "/releases/v1.2.3/km-linux-amd64"
    with running(SiteBackend(site), access=access) as base:
        whole = _raw_get(base, path)
        part = _raw_get(base, path, "Range: bytes=100-1099")
        missing = _raw_get(base, "/releases/v9.9.9/km-linux-amd64")
        assert settled(log) == 3
    access.close()
    assert whole.endswith(binary) and part.split(b"\r\n\r\n", 1)[1] == binary[100:1100]
    assert b" 206 " in part.split(b"\r\n", 1)[0] and b" 404 " in missing.split(b"\r\n", 1)[0]
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["responseBytes"] for x in lines] == [len(whole), len(part), len(missing)]
