"""A local Azure Resource Manager endpoint for the Front Door purge.

It speaks the long-running-operation protocol the SDK polls: ``POST …/purge``
answers ``202 Accepted`` with ``Azure-AsyncOperation`` and ``Location``; the
operation URL answers ``InProgress`` a few times, then ``Succeeded`` or
``Failed``. ``mode="forbidden"`` answers the POST with an ARM 403.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PURGE_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Cdn/"
    r"profiles/(?P<profile>[^/]+)/afdEndpoints/(?P<endpoint>[^/]+)/purge$",
    re.IGNORECASE,
)


@dataclass
class PurgeCall:
    path: str
    query: str
    body: dict[str, Any]
    authorization: str


@dataclass
class FakeArm:
    mode: str = "succeed"  # succeed | fail | forbidden | hang
    in_progress_polls: int = 2
    calls: list[PurgeCall] = field(default_factory=list)
    polls: int = 0
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        arm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _json(self, status: int, doc: object, headers: dict[str, str] | None = None) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                if not PURGE_RE.match(path):
                    self._json(404, {"error": {"code": "NotFound", "message": f"no route {path}"}})
                    return
                arm.calls.append(
                    PurgeCall(path, query, json.loads(raw), self.headers.get("Authorization", ""))
                )
                if arm.mode == "forbidden":
                    self._json(
                        403,
                        {
                            "error": {
                                "code": "AuthorizationFailed",
                                "message": "The client 'release-bot' does not have authorization to perform "
                                "action "
                                "'Microsoft.Cdn/profiles/afdEndpoints/purge/action'.",
                            }
                        },
                    )
                    return
                op = f"{arm.url}/providers/Microsoft.Cdn/locations/global/operationresults/op1?api-version=x"
                self._json(
                    202, {}, {"Azure-AsyncOperation": op, "Location": op + "&location=1", "Retry-After": "0"}
                )

            def do_GET(self) -> None:
                if "operationresults" not in self.path:
                    self._json(404, {"error": {"code": "NotFound", "message": self.path}})
                    return
                if "location=1" in self.path:  # the final GET of the Location header
                    self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                arm.polls += 1
                if arm.mode == "hang" or arm.polls <= arm.in_progress_polls:
                    self._json(200, {"status": "InProgress"}, {"Retry-After": "0"})
                elif arm.mode == "fail":
                    self._json(
                        200,
                        {
                            "status": "Failed",
                            "error": {
                                "code": "PurgeFailed",
                                "message": "Purge request failed on the edge nodes.",
                            },
                        },
                    )
                else:
                    self._json(200, {"status": "Succeeded"})

        return Handler


@contextmanager
def fake_arm(mode: str = "succeed") -> Iterator[FakeArm]:
    arm = FakeArm(mode=mode)
    server = ThreadingHTTPServer(("127.0.0.1", 0), arm.handler())
    arm.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield arm
    finally:
        server.shutdown()
        server.server_close()
