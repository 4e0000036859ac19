"""A local Log Analytics query endpoint (``POST /v1/workspaces/{id}/query``) for ``inv metrics``.

It speaks the REST protocol ``azure-monitor-query`` uses: a JSON body ``{"query": KQL,
"timespan": "start/end"}`` with a bearer token, answered by ``{"tables": [{"name",
"columns": [{"name", "type"}], "rows": [[...]]}]}``. It cannot run KQL; it holds rows in
the shape Front Door's access log has in the ``AzureDiagnostics`` table (``TimeGenerated``,
``httpMethod_s``, ``requestUri_s``, ``httpStatusCode_s``, ``responseBytes_s``,
``cacheStatus_s``, ``userAgent_s``, ``clientCountry_s``, ``timeToFirstByte_s``,
``clientIp_s``, ``Category``) and applies the one projection ``kmrelease.logquery.kql``
writes, after checking that the query says it (the table, the category, each projected
column, the time order). The client address is hashed with the salt found in the query.

Modes: ``ok`` (rows of the timespan; more than ``max_rows`` gives a partial result as the
service does), ``forbidden`` (403 InsufficientAccessError), ``throttle`` (429 with
Retry-After on every call).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from azure.core.credentials import AccessToken

QUERY_PATH = re.compile(r"^/v1/workspaces/(?P<ws>[0-9a-fA-F-]{36})/query$")
SALT = re.compile(r'hash_sha256\(strcat\("(?P<salt>[0-9a-f]+)", tostring\(clientIp_s\)\)\)')

# projected name -> (KQL the query must hold, raw column, type, conversion)
PROJECTION: dict[str, tuple[str, str, str]] = {
    "time": ("time = TimeGenerated", "TimeGenerated", "datetime"),
    "method": ("method = tostring(httpMethod_s)", "httpMethod_s", "string"),
    "uri": ("uri = tostring(requestUri_s)", "requestUri_s", "string"),
    "status": ("status = toint(httpStatusCode_s)", "httpStatusCode_s", "int"),
    "bytes": ("bytes = tolong(responseBytes_s)", "responseBytes_s", "long"),
    "cache": ("cache = toupper(tostring(cacheStatus_s))", "cacheStatus_s", "string"),
    "agent": ("agent = tostring(userAgent_s)", "userAgent_s", "string"),
    "country": ("country = tostring(clientCountry_s)", "clientCountry_s", "string"),
    "ttfb": ("ttfb = todouble(timeToFirstByte_s)", "timeToFirstByte_s", "real"),
    "client": ("client = substring(", "clientIp_s", "string"),
}


class StaticCredential:
    """A TokenCredential that hands out one fake bearer token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("fake-loganalytics-token", int(datetime.now(UTC).timestamp()) + 3600)


def diagnostics_row(line: dict[str, Any], address: str) -> dict[str, Any]:
    """A local access-log line as Front Door's row in AzureDiagnostics (numbers as strings)."""
    return {
        "TimeGenerated": line["time"],
        "Category": "FrontDoorAccessLog",
        "httpMethod_s": line["httpMethod"],
        "requestUri_s": line["requestUri"],
        "httpStatusCode_s": str(line["httpStatusCode"]),
        "responseBytes_s": str(line["responseBytes"]),
        "cacheStatus_s": line["cacheStatus"],
        "userAgent_s": line["userAgent"],
        "clientCountry_s": line["clientCountry"],
        "timeToFirstByte_s": str(line["timeToFirstByte"]),
        "clientIp_s": address,
    }


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class FakeLogAnalytics:
    rows: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "ok"  # ok | forbidden | throttle
    max_rows: int = 500_000
    calls: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def answer(
        self, workspace: str, body: dict[str, Any], auth: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.calls.append({"workspace": workspace, **body})
        if not auth.startswith("Bearer "):
            return 401, {"error": {"code": "AuthorizationRequiredError", "message": "no token"}}, {}
        if self.mode == "forbidden":
            message = "The provided credentials have insufficient access to perform the requested operation"
            return 403, {"error": {"code": "InsufficientAccessError", "message": message}}, {}
        if self.mode == "throttle":
            error = {"code": "TooManyRequests", "message": "Too many requests, retry after 1 second"}
            return 429, {"error": error}, {"Retry-After": "1"}
        query = str(body.get("query", ""))
        problem = self._check(query)
        if problem:
            return 400, {"error": {"code": "BadArgumentError", "message": problem}}, {}
        start, end = (_time(t) for t in str(body["timespan"]).split("/"))
        salt = SALT.search(query).group("salt")  # type: ignore[union-attr]
        picked = [r for r in self.rows if start <= _time(r["TimeGenerated"]) < end]
        picked.sort(key=lambda r: _time(r["TimeGenerated"]))
        table = self._table(picked[: self.max_rows], salt)
        if len(picked) > self.max_rows:
            error = {"code": "PartialError", "message": "There were some errors when processing your query."}
            return 200, {"tables": [table], "error": error}, {}
        return 200, {"tables": [table]}, {}

    @staticmethod
    def _check(query: str) -> str:
        needed = ["AzureDiagnostics", 'Category == "FrontDoorAccessLog"', "| order by time asc"]
        needed += [kql for kql, _, _ in PROJECTION.values()]
        missing = [n for n in needed if n not in query]
        if missing or not SALT.search(query):
            return f"query lacks {missing or ['the salted hash of clientIp_s']}"
        return ""

    @staticmethod
    def _table(rows: list[dict[str, Any]], salt: str) -> dict[str, Any]:
        def value(name: str, raw: str, kind: str, row: dict[str, Any]) -> Any:
            v = row.get(raw)
            if name == "client":
                return hashlib.sha256((salt + str(v or "")).encode()).hexdigest()[:16]
            if name == "cache":
                return str(v or "").upper()
            if kind in ("int", "long"):
                return int(v) if v not in (None, "") else None
            if kind == "real":
                return float(v) if v not in (None, "") else None
            return v

        columns = [{"name": n, "type": kind} for n, (_, _, kind) in PROJECTION.items()]
        data = [[value(n, raw, kind, r) for n, (_, raw, kind) in PROJECTION.items()] for r in rows]
        return {"name": "PrimaryResult", "columns": columns, "rows": data}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                m = QUERY_PATH.match(self.path.split("?", 1)[0])
                if not m:
                    status, doc, headers = (
                        404,
                        {"error": {"code": "PathNotFoundError", "message": self.path}},
                        {},
                    )
                else:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = {}
                    status, doc, headers = fake.answer(
                        m.group("ws"), body, self.headers.get("Authorization", "")
                    )
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        return Handler


@contextmanager
def serving(fake: FakeLogAnalytics) -> Iterator[FakeLogAnalytics]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
