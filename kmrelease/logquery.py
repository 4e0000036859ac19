"""The Azure source of ``inv metrics``: Front Door's access log in Log Analytics.

Front Door Standard sends the ``FrontDoorAccessLog`` category to the workspace of the
terraform's diagnostic setting (``terraform/monitoring.tf``), where it lands in the
``AzureDiagnostics`` table with typed suffixes (``requestUri_s``, ``httpStatusCode_s`` ...).
The KQL below projects the same fields as the local edge's log, hashes the client address
inside Log Analytics with a salt made for this run (no address ever leaves Azure, and no
hash is comparable across runs), and sorts by time; the rows then feed the same
aggregation as the local source.

The window is queried a day at a time (a query returns at most 500 000 rows); a slice
whose result comes back partial is split in halves. Credentials are those of publishing
(``DefaultAzureCredential``); every call has a connection and a read timeout, a server
timeout, and a bounded number of retries.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

from .errors import KmError
from .metrics import Record, Window, fmt_time

DEFAULT_ENDPOINT = "https://api.loganalytics.io"
SLICE = timedelta(days=1)
MIN_SLICE = timedelta(seconds=1)
SERVER_TIMEOUT = 180  # seconds Log Analytics may spend on one query
COLUMNS = ("time", "method", "uri", "status", "bytes", "cache", "agent", "country", "ttfb", "client")


def _kql_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def kql(window_start: datetime, window_end: datetime, salt: str) -> str:
    """The query of one slice: Front Door's access-log rows, projected and hashed, in time order."""
    start, end = _kql_time(window_start), _kql_time(window_end)
    return "\n".join(
        [
            "AzureDiagnostics",
            '| where Category == "FrontDoorAccessLog"',
            f"| where TimeGenerated >= datetime({start}) and TimeGenerated < datetime({end})",
            "| project time = TimeGenerated, method = tostring(httpMethod_s),",
            "    uri = tostring(requestUri_s), status = toint(httpStatusCode_s),",
            "    bytes = tolong(responseBytes_s), cache = toupper(tostring(cacheStatus_s)),",
            "    agent = tostring(userAgent_s), country = tostring(clientCountry_s),",
            "    ttfb = todouble(timeToFirstByte_s),",
            f'    client = substring(hash_sha256(strcat("{salt}", tostring(clientIp_s))), 0, 16)',
            "| order by time asc",
        ]
    )


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    return kind(value) if value not in (None, "") else kind(0)


def record_of_row(row: dict[str, Any]) -> Record:
    """A result row (named as :data:`COLUMNS`) as a record."""
    t = row["time"]
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return Record(
        t.astimezone(UTC),
        str(row["method"] or ""),
        str(row["uri"] or "/"),
        _number(row["status"], int),
        _number(row["bytes"], int),
        str(row["cache"] or "").upper(),
        str(row["agent"] or ""),
        str(row["country"] or ""),
        _number(row["ttfb"], float),
        str(row["client"] or ""),
    )


def _client(credential: TokenCredential | None, endpoint: str) -> Any:
    from azure.monitor.query import LogsQueryClient

    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return LogsQueryClient(
        credential,
        endpoint=endpoint,
        connection_timeout=10,
        read_timeout=SERVER_TIMEOUT + 30,
        retry_total=2,
        retry_backoff_max=10,
    )


def _failure(exc: HttpResponseError, workspace: str) -> KmError:
    status = exc.status_code
    code = getattr(getattr(exc, "error", None), "code", None) or ""
    detail = f"HTTP {status}" + (f" {code}" if code else "")
    if status == 403:
        return KmError(
            f"Log Analytics refused the query ({detail}): the signed-in identity needs the "
            f"Log Analytics Reader role on workspace {workspace}"
        )
    if status == 429:
        return KmError(
            f"Log Analytics is throttling queries ({detail}): wait a minute and re-run, or narrow --since"
        )
    if status in (401,):
        return KmError(
            f"Log Analytics did not accept the credentials ({detail}): az login, or check AZURE_* settings"
        )
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return KmError(f"Log Analytics query failed ({detail}): {message}")


def _slices(window: Window) -> Iterator[tuple[datetime, datetime]]:
    start = window.since
    while start < window.until:
        end = min(start + SLICE, window.until)
        yield start, end
        start = end


def _query(
    client: Any, workspace: str, start: datetime, end: datetime, salt: str, **options: Any
) -> Iterator[list[Record]]:
    from azure.monitor.query import LogsQueryStatus

    result = client.query_workspace(
        workspace, kql(start, end, salt), timespan=(start, end), server_timeout=SERVER_TIMEOUT, **options
    )
    if result.status == LogsQueryStatus.PARTIAL:
        if end - start <= MIN_SLICE:
            raise KmError(
                f"Log Analytics returned a partial result for {fmt_time(start)}..{fmt_time(end)}: "
                f"{getattr(result.partial_error, 'message', 'too many rows')}"
            )
        middle = start + (end - start) / 2
        yield from _query(client, workspace, start, middle, salt, **options)
        yield from _query(client, workspace, middle, end, salt, **options)
        return
    for table in result.tables:
        names = list(table.columns)
        index = [names.index(c) for c in COLUMNS] if all(c in names for c in COLUMNS) else None
        if index is None:
            raise KmError(f"Log Analytics returned unexpected columns {names}: expected {', '.join(COLUMNS)}")
        block = []
        for row in table.rows:
            values = list(row)
            block.append(record_of_row({c: values[i] for c, i in zip(COLUMNS, index, strict=True)}))
        yield block


def read_azure(
    workspace: str,
    window: Window,
    *,
    credential: TokenCredential | None = None,
    endpoint: str | None = None,
) -> Iterator[list[Record]]:
    """Front Door's access-log records of the window, slice by slice, in time order."""
    workspace = workspace or os.environ.get("KM_LOG_ANALYTICS_WORKSPACE", "")
    if not workspace:
        raise KmError(
            "no Log Analytics workspace: pass --workspace GUID or set KM_LOG_ANALYTICS_WORKSPACE "
            "(the Workspace ID of the workspace terraform's log_analytics_workspace_id names)"
        )
    endpoint = (endpoint or os.environ.get("KM_LOG_ANALYTICS_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    options: dict[str, Any] = {}
    if endpoint.startswith("http://"):
        options["enforce_https"] = False  # a local Log Analytics stand-in in tests
    salt = secrets.token_hex(16)
    try:
        client = _client(credential, endpoint)
        for start, end in _slices(window):
            yield from _query(client, workspace, start, end, salt, **options)
    except KmError:
        raise
    except ClientAuthenticationError as exc:
        if exc.status_code is None:
            raise KmError(
                "no Azure credentials for Log Analytics (az login, a managed identity, or "
                "AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET)"
            ) from None
        raise _failure(exc, workspace) from None
    except HttpResponseError as exc:
        raise _failure(exc, workspace) from None
    except AzureError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KmError(f"cannot query Log Analytics at {endpoint}: {first}") from None
