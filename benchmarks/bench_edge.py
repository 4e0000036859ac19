"""Edge benchmark (issue 13): small requests per second through ``inv serve``'s server, with and
without a slowloris holding 200 connections, against the standard library's thread-per-connection
``ThreadingHTTPServer`` running the same handler (the baseline, measured in the same run).

Each server runs in its own process on loopback; 50 client threads (this process) send
``GET /version`` on kept-alive connections for ``KM_BENCH_SECONDS`` (default 4) per round. The
slowloris opens 200 connections and sends one more header byte per connection every second,
never finishing a head. Reported: requests/s of each, the ratios, and the server's thread
count while the slowloris holds on. Goal: the edge ≥ 500 requests/s in both cases.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout: tests.support

ROOT = Path(__file__).resolve().parents[1]  # this checkout
CLIENTS = 50
SLOW = 200
SECONDS = float(os.environ.get("KM_BENCH_SECONDS", "4"))
GOAL = 500.0


def serve_main(kind: str, site: str) -> None:
    """In the server process: serve ``site`` with the edge or the baseline; print the port."""
    from http.server import ThreadingHTTPServer

    from kmrelease.accesslog import NoLog
    from kmrelease.serve import SiteBackend, _handler, make_server

    backend = SiteBackend(Path(site))
    if kind == "edge":
        server = make_server(backend)
    else:

        class Baseline(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                """A slowloris's connection timing out is expected here: no traceback."""

        server = Baseline(("127.0.0.1", 0), _handler(backend, NoLog()))  # type: ignore[assignment]
    print(server.server_address[1], flush=True)
    server.serve_forever()


def make_site(tmp: Path) -> Path:
    from kmrelease.destinations.local import LocalSite
    from kmrelease.ui import Reporter
    from tests.support.fake_release import make_dist, make_scripts
    from tests.support.releases import publish

    rel = make_dist(tmp / "dist", "v1.0.0")
    publish(rel, LocalSite(tmp / "site"), Reporter(quiet=True), scripts=make_scripts(tmp))
    return tmp / "site"


def start(kind: str, site: Path) -> tuple[subprocess.Popen[str], int]:
    code = f"from benchmarks.bench_edge import serve_main; serve_main({kind!r}, {str(site)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def load(port: int, seconds: float) -> float:
    """Requests per second of CLIENTS kept-alive clients for ``seconds``."""
    counts = [0] * CLIENTS
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop:
            conn.request("GET", "/version")
            resp = conn.getresponse()
            if resp.read() != b"v1.0.0\n":
                raise SystemExit("wrong answer")
            counts[i] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started)


class Slowloris:
    """SLOW connections, each sending one more header byte every second, never finishing."""

    def __init__(self, port: int) -> None:
        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(SLOW)]
        for s in self.socks:
            s.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\nX-a: ")
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drip, daemon=True)
        self.thread.start()

    def _drip(self) -> None:
        while not self.stop.wait(1.0):
            for s in self.socks:
                with contextlib.suppress(OSError):
                    s.sendall(b"a")

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for s in self.socks:
            s.close()


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return -1


def measure(kind: str, site: Path) -> tuple[float, float, int]:
    proc, port = start(kind, site)
    try:
        load(port, 1.0)  # warm-up
        plain = load(port, SECONDS)
        slow = Slowloris(port)
        try:
            time.sleep(0.5)
            held = threads_of(proc.pid)
            loaded = load(port, SECONDS)
        finally:
            slow.close()
        return plain, loaded, held
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="km-bench-edge-") as tmp:
        site = make_site(Path(tmp))
        base_plain, base_slow, base_threads = measure("baseline", site)
        edge_plain, edge_slow, edge_threads = measure("edge", site)
    print(f"clients {CLIENTS}, {SECONDS:g} s per round, GET /version (7 bytes) on kept-alive connections")
    print(f"{'server':<44}{'req/s':>10}{'+ slowloris 200':>18}{'threads held':>14}")
    rows = [
        ("baseline: ThreadingHTTPServer, same handler", base_plain, base_slow, base_threads),
        ("edge: selector + bounded workers", edge_plain, edge_slow, edge_threads),
    ]
    for name, plain, slow, held in rows:
        print(f"{name:<44}{plain:>10.0f}{slow:>18.0f}{held:>14}")
    print(f"edge ÷ baseline: {edge_plain / base_plain:.2f} (plain), {edge_slow / base_slow:.2f} (slowloris)")
    print(f"edge with ÷ without slowloris: {edge_slow / edge_plain:.2f}")
    ok = edge_plain >= GOAL and edge_slow >= GOAL
    print(f"goal ≥ {GOAL:.0f} req/s with and without the slowloris: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
