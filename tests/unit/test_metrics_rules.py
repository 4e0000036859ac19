"""The counting rules of SPEC §15, one at a time, on records made by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kmrelease.accesslog import EdgeCache, client_hash, load_salt
from kmrelease.errors import KmError
from kmrelease.metrics import (
    Aggregator,
    LocalStats,
    MetricsRequest,
    Record,
    Window,
    classify,
    parse_window,
    path_of,
    read_local,
    run,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC).timestamp()
WINDOW = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))
BIN = "/releases/v1.2.3/km-linux-amd64"


def rec(
    dt: float,
    path: str,
    *,
    method: str = "GET",
    status: int = 200,
    client: str = "a",
    agent: str = "curl/8",
    cache: str = "MISS",
    nbytes: int = 100,
    country: str = "",
    ttfb: float = 0.001,
) -> Record:
    when = datetime.fromtimestamp(T0 + dt, UTC)
    return Record(when, method, path, status, nbytes, cache, agent, country, ttfb, client)


def report(*records: Record) -> dict[str, object]:
    return Aggregator().feed([records]).report(WINDOW)


def test_a_download_is_a_successful_get_of_a_release_binary() -> None:
    r = report(
        rec(0, BIN),
        rec(1, BIN, method="HEAD", client="b"),
        rec(2, BIN + ".sha256", client="c"),
        rec(3, "/releases/v1.2.3/SHA256SUMS", client="c"),
        rec(4, "/releases/latest/km-windows-arm64.exe", client="d"),
        rec(5, "/apt/pool/main/k/kilometers-cli/kilometers-cli_1.2.3_amd64.deb", client="e"),
        rec(6, "/releases/v1.2.3/km-linux-amd64", status=404, client="f"),
    )
    assert r["downloads"] == [
        {"version": "latest", "os": "windows", "arch": "arm64", "count": 1},
        {"version": "v1.2.3", "os": "linux", "arch": "amd64", "count": 1},
    ]


def test_the_same_clients_same_file_within_a_minute_counts_once() -> None:
    r = report(
        rec(0, BIN),
        rec(20, BIN, status=206),  # a resumed range
        rec(70, BIN),  # within a minute of the previous request: the same download
        rec(131, BIN),  # more than a minute after the last one: a new download
        rec(132, BIN, client="b"),  # another client
    )
    assert r["downloads"] == [{"version": "v1.2.3", "os": "linux", "arch": "amd64", "count": 3}]


def test_installs_complete_with_a_binary_download_of_the_same_client_within_ten_minutes() -> None:
    r = report(
        rec(0, "/install.sh", client="a"),
        rec(5, BIN, client="a"),  # completes a
        rec(10, "/", client="b"),
        rec(11, BIN, client="c"),  # another client: does not complete b
        rec(20, "/install.ps1", client="d"),
        rec(20 + 601, "/releases/v1.2.3/km-windows-amd64.exe", client="d"),  # too late
        rec(700, "/install/install.sh", client="e", method="HEAD"),  # not a start
        rec(800, "/install.sh", client="f", status=404),  # not a start
    )
    assert r["installs"] == {"started": 3, "completed": 1}


def test_update_checks_are_version_reads_by_km() -> None:
    r = report(
        rec(0, "/version", agent="km/v1.1.0"),
        rec(1, "/version", agent="km/v1.2.0-rc.1", client="b"),
        rec(2, "/version", agent="curl/8.5.0"),
        rec(3, "/version", agent="km/v1.1.0", method="HEAD"),
        rec(4, "/health", agent="km/v1.1.0"),
    )
    assert r["update_checks"] == 2


def test_failures_per_path_and_status_most_first_without_query() -> None:
    r = report(
        rec(0, "/releases/v9.9.9/km-linux-amd64.sha256", status=404),
        rec(1, "/releases/v9.9.9/km-linux-amd64.sha256", status=404, client="b"),
        rec(2, "/version", status=503),
        rec(3, "/health", status=200),
    )
    assert r["failures"] == [
        {"path": "/releases/v9.9.9/km-linux-amd64.sha256", "status": 404, "count": 2},
        {"path": "/version", "status": 503, "count": 1},
    ]
    assert path_of("https://get.kilometers.ai:443/version?token=x") == "/version"


def test_countries_cache_ratio_bytes_and_ttfb() -> None:
    r = report(
        rec(0, "/version", cache="MISS", country="Netherlands", nbytes=10, ttfb=0.001),
        rec(1, "/version", cache="HIT", country="Netherlands", nbytes=20, ttfb=0.002),
        rec(2, "/version", cache="REMOTE_HIT", country="Japan", nbytes=30, ttfb=0.003),
        rec(3, "/health", cache="UNCACHEABLE", nbytes=40, ttfb=0.100),
    )
    assert r["countries"] == [
        {"country": "Netherlands", "count": 2},
        {"country": "Japan", "count": 1},
        {"country": "unknown", "count": 1},
    ]
    assert r["cache_hit_ratio"] == round(2 / 3, 4)
    assert r["bytes"] == 100
    assert r["ttfb_ms"] == {"p50": 2.0, "p90": 100.0, "p99": 100.0}
    assert r["requests"] == 4


def test_an_empty_report_keeps_its_shape() -> None:
    r = report()
    assert list(r)[:10] == [
        "window",
        "downloads",
        "installs",
        "update_checks",
        "failures",
        "countries",
        "cache_hit_ratio",
        "bytes",
        "ttfb_ms",
        "requests",
    ]
    assert r["cache_hit_ratio"] == 0.0 and r["ttfb_ms"] == {"p50": 0.0, "p90": 0.0, "p99": 0.0}


def test_classify_knows_binaries_of_any_configured_name() -> None:
    assert classify("/releases/v1.0.0/tool-darwin-arm64", binary="tool").kind == "binary"
    assert classify("/releases/v1.0.0/km-darwin-arm64", binary="tool").kind == "other"
    assert classify("/releases/v1.0.0/km-plan9-amd64").kind == "other"
    assert classify("/releases/v1.0.0/km-windows-amd64").kind == "other"  # no .exe


@pytest.mark.parametrize(
    ("since", "until", "start", "end"),
    [
        ("7d", "2026-03-08T00:00:00Z", "2026-03-01T00:00:00+00:00", "2026-03-08T00:00:00+00:00"),
        ("12h", "2026-03-08", "2026-03-07T12:00:00+00:00", "2026-03-08T00:00:00+00:00"),
        ("2026-03-01T06:00:00+02:00", "2026-03-02", "2026-03-01T04:00:00+00:00", "2026-03-02T00:00:00+00:00"),
    ],
)
def test_window(since: str, until: str, start: str, end: str) -> None:
    w = parse_window(since, until)
    assert (w.since.isoformat(), w.until.isoformat()) == (start, end)


@pytest.mark.parametrize(
    ("since", "until", "needle"),
    [
        ("7x", "", "--since '7x' is not a time"),
        ("7d", "yesterday", "--until 'yesterday' is not a time"),
        ("2026-03-02", "2026-03-01", "empty window"),
        ("999999999d", "", "reaches before the year 1"),
    ],
)
def test_window_refused(since: str, until: str, needle: str) -> None:
    with pytest.raises(KmError, match=needle):
        parse_window(since, until)


def test_local_reader_skips_what_is_not_a_record_and_what_is_outside_the_window(tmp_path: Path) -> None:
    log = tmp_path / "access.jsonl"
    good = {"time": "2026-03-01T08:00:00.000Z", "httpMethod": "GET", "requestUri": "http://h/version"}
    outside = dict(good, time="2026-02-01T08:00:00.000Z")
    text = [json.dumps(good), "{not json", json.dumps({"x": 1}), json.dumps(outside)]
    log.write_text("\n".join(text) + "\n")
    stats = LocalStats()
    assert [r.uri for block in read_local(log, WINDOW, stats) for r in block] == ["http://h/version"]
    assert (stats.lines, stats.malformed) == (4, 2)
    said: list[str] = []
    run(MetricsRequest(log=log, since="2026-03-01", until="2026-03-02", fmt="json"), said.append)
    assert said == ["2 of 4 lines of the access log are not records: skipped"]


def test_missing_log_and_bad_options_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(KmError, match=r"^no access log at .*missing\.jsonl: `inv serve` writes one"):
        run(MetricsRequest(log=tmp_path / "missing.jsonl"), print)
    with pytest.raises(KmError, match="--format must be one of table, json, html"):
        run(MetricsRequest(log=tmp_path / "x", fmt="xml"), print)
    with pytest.raises(KmError, match="--source must be local or azure"):
        run(MetricsRequest(source="gcp", log=tmp_path / "x"), print)


def test_empty_window_says_so(tmp_path: Path) -> None:
    log = tmp_path / "access.jsonl"
    log.write_text("")
    said: list[str] = []
    out = run(MetricsRequest(log=log, since="2026-03-01", until="2026-03-02", fmt="json"), said.append)
    assert json.loads(out)["requests"] == 0
    assert said == ["no requests between 2026-03-01T00:00:00Z and 2026-03-02T00:00:00Z (local source)"]


def test_salt_is_made_once_private_and_hashes_are_not_addresses(tmp_path: Path) -> None:
    salt = load_salt(tmp_path / "cache")
    assert load_salt(tmp_path / "cache") == salt
    assert (tmp_path / "cache" / "access-log-salt").stat().st_mode & 0o777 == 0o600
    h = client_hash(salt, "203.0.113.7")
    assert len(h) == 16 and "203" not in h and h != client_hash("other", "203.0.113.7")


def test_edge_cache_labels() -> None:
    cache = EdgeCache()
    assert cache.status("/version", 200, 0.0) == "MISS"
    assert cache.status("/version", 200, 299.0) == "HIT"
    assert cache.status("/version", 200, 301.0) == "MISS"  # max-age 300 passed: filled again
    assert cache.status("/releases/v1.2.3/km-linux-amd64", 206, 0.0) == "MISS"
    assert cache.status("/releases/v1.2.3/km-linux-amd64", 206, 1.0) == "HIT"
    assert cache.status("/health", 200, 0.0) == "UNCACHEABLE"
    assert cache.status("/nope", 404, 0.0) == "N/A"
    assert cache.status("/releases/v9.9.9/km-linux-amd64", 404, 0.0) == "MISS"


def test_percentiles_are_nearest_rank_over_counted_values() -> None:
    from collections import Counter

    from kmrelease.metrics import percentiles

    values = Counter(i / 1000 for i in range(1, 101))  # 1..100 ms
    assert percentiles(values) == {"p50": 50.0, "p90": 90.0, "p99": 99.0}
    assert percentiles(Counter({0.004: 98, 0.5: 2})) == {"p50": 4.0, "p90": 4.0, "p99": 500.0}


def test_a_log_truncated_while_it_is_read_ends_the_report_early_not_the_process(tmp_path: Path) -> None:
    """A log rotated with copytruncate under a running ``inv metrics``: what was read counts,
    nothing crashes (a memory-mapped reader would die of SIGBUS on the vanished pages)."""
    log = tmp_path / "access.jsonl"
    line = json.dumps(
        {"time": "2026-03-01T08:00:00.000Z", "httpMethod": "GET", "requestUri": "http://h/version"}
    )
    log.write_text((line + "\n") * 20_000)  # several blocks of the reader
    blocks = read_local(log, WINDOW)
    first = next(blocks)
    with log.open("r+b") as fh:
        fh.truncate(0)
    rest = [r for block in blocks for r in block]
    assert 0 < len(first) + len(rest) < 20_000
