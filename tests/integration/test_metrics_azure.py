"""The Azure source of ``inv metrics`` against a local Log Analytics query endpoint, and the CLI.

Each failure is one clear line; nothing hangs (connection and read timeouts, two retries).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kmrelease.errors import KmError
from kmrelease.metrics import MetricsRequest, run
from tests.support.fake_loganalytics import FakeLogAnalytics, StaticCredential, serving
from tests.support.sites import dead_url

pytest.importorskip("azure.monitor.query")

ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = "00000000-1111-2222-3333-444444444444"
WINDOW = {"since": "2026-03-01", "until": "2026-03-02"}


def row(
    time: str, uri: str, ip: str, *, status: int = 200, ua: str = "curl/8.5.0", country: str = ""
) -> dict[str, Any]:
    return {
        "TimeGenerated": time,
        "Category": "FrontDoorAccessLog",
        "httpMethod_s": "GET",
        "requestUri_s": f"https://get.kilometers.ai:443{uri}",
        "httpStatusCode_s": str(status),
        "responseBytes_s": "1000",
        "cacheStatus_s": "hit",
        "userAgent_s": ua,
        "clientCountry_s": country,
        "timeToFirstByte_s": "0.012",
        "clientIp_s": ip,
    }


def azure(fake: FakeLogAnalytics, said: list[str] | None = None, **window: str) -> dict[str, Any]:
    out = run(
        MetricsRequest(source="azure", workspace=WORKSPACE, fmt="json", **(window or WINDOW)),
        (said if said is not None else []).append,
        credential=StaticCredential(),
        endpoint=fake.url,
    )
    return dict(json.loads(out))


def test_front_door_rows_are_counted_and_addresses_never_reach_the_report() -> None:
    rows = [
        row("2026-03-01T08:00:00Z", "/install.sh", "203.0.113.7", country="Netherlands"),
        row("2026-03-01T08:00:02Z", "/version", "203.0.113.7", country="Netherlands"),
        row(
            "2026-03-01T08:00:03Z",
            "/releases/v1.2.3/km-linux-amd64?x=1",
            "203.0.113.7",
            country="Netherlands",
        ),
        row("2026-03-01T09:00:00Z", "/version", "198.51.100.9", ua="km/v1.2.2", country="Japan"),
        row("2026-03-01T09:00:01Z", "/releases/v9.9.9/km-linux-amd64", "198.51.100.9", status=404),
        row("2026-03-02T09:00:00Z", "/version", "198.51.100.9", ua="km/v1.2.2"),  # outside the window
    ]
    with serving(FakeLogAnalytics(rows)) as fake:
        r = azure(fake)
    assert r["downloads"] == [{"version": "v1.2.3", "os": "linux", "arch": "amd64", "count": 1}]
    assert r["installs"] == {"started": 1, "completed": 1}
    assert r["update_checks"] == 1
    assert r["failures"] == [{"path": "/releases/v9.9.9/km-linux-amd64", "status": 404, "count": 1}]
    assert r["countries"] == [
        {"country": "Netherlands", "count": 3},
        {"country": "Japan", "count": 1},
        {"country": "unknown", "count": 1},
    ]
    assert r["cache_hit_ratio"] == 1.0 and r["bytes"] == 5000 and r["ttfb_ms"]["p99"] == 12.0
    text = json.dumps(r)
    assert "203.0.113" not in text and "198.51.100" not in text
    query = fake.calls[0]["query"]
    assert "203.0.113" not in query and fake.calls[0]["timespan"].startswith("2026-03-01T00:00:00")


def test_forbidden_is_one_line_naming_the_role() -> None:
    with serving(FakeLogAnalytics(mode="forbidden")) as fake, pytest.raises(KmError) as exc:
        azure(fake)
    assert str(exc.value) == (
        "Log Analytics refused the query (HTTP 403 InsufficientAccessError): the signed-in identity needs "
        f"the Log Analytics Reader role on workspace {WORKSPACE}"
    )
    assert len(fake.calls) == 1  # a refusal is not retried


def test_throttling_is_retried_a_bounded_number_of_times_then_one_line() -> None:
    with serving(FakeLogAnalytics(mode="throttle")) as fake, pytest.raises(KmError) as exc:
        azure(fake)
    assert str(exc.value).startswith("Log Analytics is throttling queries (HTTP 429")
    assert str(exc.value).endswith("wait a minute and re-run, or narrow --since")
    assert len(fake.calls) == 3  # the call and two retries, each after Retry-After


def test_an_empty_window_is_a_zero_report_and_one_line() -> None:
    said: list[str] = []
    with serving(FakeLogAnalytics([row("2026-02-01T08:00:00Z", "/version", "203.0.113.7")])) as fake:
        r = azure(fake, said)
    assert r["requests"] == 0 and r["downloads"] == [] and r["installs"] == {"started": 0, "completed": 0}
    assert said == ["no requests between 2026-03-01T00:00:00Z and 2026-03-02T00:00:00Z (azure source)"]


def test_a_window_is_queried_a_day_at_a_time_and_partial_results_are_split() -> None:
    rows = [
        row(f"2026-03-0{d}T0{h}:00:00Z", "/version", "203.0.113.7", ua="km/v1")
        for d in (1, 2)
        for h in (1, 2, 3)
    ]
    with serving(FakeLogAnalytics(rows, max_rows=2)) as fake:
        r = azure(fake, since="2026-03-01", until="2026-03-03")
    assert r["update_checks"] == 6
    spans = [c["timespan"][:10] for c in fake.calls]
    assert spans[0] == "2026-03-01" and "2026-03-02" in spans and len(fake.calls) > 2


def test_a_partial_result_that_cannot_be_split_further_is_one_line() -> None:
    rows = [row("2026-03-01T08:00:00Z", "/version", f"203.0.113.{i}") for i in range(3)]
    with serving(FakeLogAnalytics(rows, max_rows=1)) as fake, pytest.raises(KmError) as exc:
        azure(fake)
    assert str(exc.value).startswith("Log Analytics returned a partial result for 2026-03-01T07:59:59Z..")


def test_unreachable_endpoint_and_missing_workspace() -> None:
    with pytest.raises(KmError, match=r"^cannot query Log Analytics at http://127\.0\.0\.1:\d+: "):
        run(
            MetricsRequest(source="azure", workspace=WORKSPACE, **WINDOW),
            print,
            credential=StaticCredential(),
            endpoint=dead_url(),
        )
    env = {k: v for k, v in os.environ.items() if k != "KM_LOG_ANALYTICS_WORKSPACE"}
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "metrics", "--source", "azure"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "error: no Log Analytics workspace: pass --workspace GUID or set KM_LOG_ANALYTICS_WORKSPACE "
        "(the Workspace ID of the workspace terraform's log_analytics_workspace_id names)"
    )


def test_inv_metrics_local_json_to_a_file(tmp_path: Path) -> None:
    log = tmp_path / "access.jsonl"
    line = {
        "time": "2026-03-01T08:00:00.000Z",
        "httpMethod": "GET",
        "requestUri": "http://127.0.0.1:8080/releases/v1.2.3/km-darwin-arm64",
        "httpStatusCode": 200,
        "responseBytes": 10,
        "cacheStatus": "MISS",
        "userAgent": "curl/8",
        "clientCountry": "",
        "timeToFirstByte": 0.001,
        "clientIpHash": "0123456789abcdef",
    }
    log.write_text(json.dumps(line) + "\n")
    out = tmp_path / "r" / "report.json"
    args = [
        "metrics",
        "--log",
        str(log),
        "--since",
        "2026-03-01",
        "--until",
        "2026-03-02",
        "--format",
        "json",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", *args, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr.strip() == f"wrote the json report to {out}"
    assert json.loads(out.read_text())["downloads"] == [
        {"version": "v1.2.3", "os": "darwin", "arch": "arm64", "count": 1}
    ]


def test_azure_source_without_the_sdk_is_one_line() -> None:
    from tests.integration.test_missing_extras import HIDE_AZURE, HINT
    from tests.integration.test_tasks_cli import inv, one_error_line

    proc = inv("metrics", "--source", "azure", "--workspace", WORKSPACE, pre=HIDE_AZURE)
    line = one_error_line(proc)
    assert line.startswith(f"error: inv metrics --source azure needs the Azure SDK: {HINT}"), line
