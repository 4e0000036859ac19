"""A large log counted by two processes gives exactly the report of one pass, including the
rules that span the middle of the file (a repeat, an install completed after the split,
failures)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kmrelease.metrics import Aggregator, LocalStats, Window, read_local
from kmrelease.metrics_split import feed_local, split_point

WINDOW = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
BIN = "https://get.kilometers.ai:443/releases/v1.2.3/km-linux-amd64"


def line(
    dt: float, uri: str, client: str, *, status: int = 200, method: str = "GET", agent: str = "curl/8"
) -> str:
    when = (T0 + timedelta(seconds=dt)).isoformat().replace("+00:00", "Z")
    return json.dumps({
        "time": when, "httpMethod": method, "requestUri": uri, "httpStatusCode": status,
        "responseBytes": 1000, "cacheStatus": random.choice(["HIT", "MISS"]), "userAgent": agent,
        "clientCountry": random.choice(["Japan", ""]), "timeToFirstByte": random.random() / 50,
        "clientIpHash": client,
    })  # fmt: skip


def write(path: Path, n: int) -> list[str]:
    random.seed(7)
    base = "https://get.kilometers.ai:443"
    paths = [BIN, f"{base}/install.sh", f"{base}/version", f"{base}/wp-login.php"]
    paths.append(BIN.replace("linux", "darwin"))
    lines = []
    for i in range(n):
        uri = random.choice(paths)
        status = 404 if "wp-login" in uri else 200
        agent = random.choice(["km/v1.2.2", "curl/8"])
        lines.append(line(i * 2.0, uri, f"c{random.randrange(50)}", status=status, agent=agent))
    # around the middle: an install whose download comes after it, and a repeat across it
    mid = n // 2
    lines[mid - 2] = line(mid * 2.0 - 4, "https://get.kilometers.ai:443/install.sh", "edge")
    lines[mid - 1] = line(mid * 2.0 - 2, BIN, "twice")
    lines[mid + 1] = line(mid * 2.0 + 2, BIN, "twice")  # within a minute: not counted again
    lines[mid + 2] = line(mid * 2.0 + 4, BIN, "edge")  # completes the install
    path.write_text("\n".join(lines) + "\n")
    return lines


def one_pass(path: Path) -> tuple[dict[str, object], LocalStats]:
    stats = LocalStats()
    return Aggregator().feed(read_local(path, WINDOW, stats)).report(WINDOW), stats


def test_two_processes_count_exactly_as_one(tmp_path: Path) -> None:
    log = tmp_path / "access.jsonl"
    write(log, 20_000)
    with log.open("a") as fh:
        fh.write("{not a record\n")
    expected, expected_stats = one_pass(log)
    agg = Aggregator()
    stats = feed_local(agg, log, WINDOW, split_bytes=0)  # always split
    assert agg.report(WINDOW) == expected
    assert (stats.lines, stats.malformed) == (expected_stats.lines, expected_stats.malformed) == (20_001, 1)
    report = agg.report(WINDOW)
    assert report["installs"]["started"] > 0 and report["failures"]  # type: ignore[index]


def test_the_split_is_a_line_start(tmp_path: Path) -> None:
    log = tmp_path / "access.jsonl"
    lines = write(log, 101)
    data = log.read_bytes()
    cut = split_point(log, len(data))
    assert data[cut - 1 : cut] == b"\n" and len(data) // 2 <= cut
    assert data[cut:].decode().splitlines()[0] in lines
