"""Faults between the SDK and Azurite: 503 bursts, resets mid-upload, an origin that dies and comes back.

After each: the release completed through retries, or a re-run of the same call
completes it; and never does ``meta/version`` name a version whose blobs are incomplete.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from kmrelease.destinations.azure import AzureBlobDestination, RetrySettings
from kmrelease.errors import KmError
from kmrelease.ui import Reporter
from kmrelease.version import parse_version
from tests.integration.azure.conftest import FAST, assert_consistent
from tests.support.azurite import ACCOUNT, Azurite
from tests.support.releases import promote, publish
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.azurite
R = Reporter(quiet=True)
BIG = {"km-linux-amd64": 6 * 1024 * 1024, "km-windows-amd64.exe": 5 * 1024 * 1024}


@pytest.fixture
def proxy(azurite: Azurite) -> Iterator[TcpProxy]:
    p = TcpProxy("127.0.0.1", azurite.port).start()
    yield p
    p.stop()


def via(proxy: TcpProxy, azurite: Azurite, retry: RetrySettings = FAST) -> AzureBlobDestination:
    conn = azurite.connection_string(f"{proxy.url}/{ACCOUNT}")
    return AzureBlobDestination.from_connection_string(conn, R, retry=retry)


def test_burst_of_503s_is_retried(
    proxy: TcpProxy, azurite: Azurite, blobs: BlobServiceClient, release_of: Any, scripts: Path
) -> None:
    dest = via(proxy, azurite)  # 4 retries
    v1 = release_of("v1.0.0", sizes=BIG)
    proxy.fail_next(3)  # the first three requests
    out = publish(v1, dest, R, scripts=scripts)
    assert proxy.stats.busy_sent == 3
    assert out.promoted and assert_consistent(blobs, {"v1.0.0": v1}) == "v1.0.0"

    # bursts of three in validation, in the uploads (block puts included), and in the promotion
    v2 = release_of("v1.1.0", sizes=BIG)
    proxy.stats.requests = proxy.stats.busy_sent = 0
    proxy.fail_at(4, 5, 6, 20, 21, 22, 40, 41, 42, 60, 61, 62)
    out = publish(v2, dest, R, scripts=scripts)
    assert proxy.stats.busy_sent == 12
    assert out.promoted and sorted(out.uploaded) == sorted(v2.names)
    assert assert_consistent(blobs, {"v1.0.0": v1, "v1.1.0": v2}) == "v1.1.0"


def test_503s_beyond_the_retry_budget_fail_cleanly_then_rerun_completes(
    proxy: TcpProxy, azurite: Azurite, blobs: BlobServiceClient, release_of: Any, scripts: Path
) -> None:
    dest = via(proxy, azurite, RetrySettings(total=2, initial_backoff=0.01, increment_base=0.01, jitter=0))
    v1, v2 = release_of("v1.0.0"), release_of("v1.1.0")
    releases = {"v1.0.0": v1, "v1.1.0": v2}
    publish(v1, dest, R, scripts=scripts)
    outcomes = []
    for n in (5, 12, 20, 30, 45):  # validation, uploads, read-back, promotion in turn
        proxy.stats.requests = 0
        proxy.fail_at(*range(n, n + 50))  # far more than the retry budget
        try:
            publish(v2, dest, R, scripts=scripts)
            outcomes.append("done")
        except KmError as exc:
            assert "HTTP 503 ServerBusy" in str(exc), str(exc)
            outcomes.append("failed")
        proxy.fail_at()
        done = outcomes[-1] == "done"
        assert assert_consistent(blobs, releases, latest=done) in ("v1.0.0", "v1.1.0")
    assert "failed" in outcomes
    publish(v2, dest, R, scripts=scripts)
    assert assert_consistent(blobs, releases) == "v1.1.0"


def test_connection_resets_mid_upload_are_retried(
    proxy: TcpProxy, azurite: Azurite, blobs: BlobServiceClient, release_of: Any, scripts: Path
) -> None:
    dest = via(proxy, azurite)
    v1 = release_of("v1.0.0", sizes=BIG)
    proxy.reset_next(3, after_bytes=256 * 1024)  # three uploads cut off after 256 KiB of body
    out = publish(v1, dest, R, scripts=scripts)
    assert proxy.stats.resets == 3
    assert out.promoted and assert_consistent(blobs, {"v1.0.0": v1}) == "v1.0.0"
    # a promotion (server-side copies, small writes) with resets too
    v2 = release_of("v1.1.0", sizes=BIG)
    publish(v2, dest, R, scripts=scripts)
    proxy.reset_next(2, after_bytes=2)
    promote(dest, parse_version("v1.0.0"), R, scripts=scripts)
    assert assert_consistent(blobs, {"v1.0.0": v1, "v1.1.0": v2}) == "v1.0.0"


def test_resets_beyond_the_retry_budget_then_rerun(
    proxy: TcpProxy, azurite: Azurite, blobs: BlobServiceClient, release_of: Any, scripts: Path
) -> None:
    dest = via(proxy, azurite, RetrySettings(total=1, initial_backoff=0.01, increment_base=0.01, jitter=0))
    v1 = release_of("v1.0.0", sizes=BIG)
    proxy.reset_next(50, after_bytes=100 * 1024)
    with pytest.raises(KmError, match="upload releases/v1.0.0/"):
        publish(v1, dest, R, scripts=scripts)
    assert assert_consistent(blobs, {"v1.0.0": v1}, latest=False) is None
    proxy.reset_next(0)
    out = publish(v1, dest, R, scripts=scripts)
    assert out.promoted and assert_consistent(blobs, {"v1.0.0": v1}) == "v1.0.0"


# a release of v1.1.0 over v1.0.0 is ~141 requests: 1–17 validation, 19–36 uploads, 37–54 read-back,
# 55–122 copies into latest/, 123–136 checks, 138 the pointer, 140 health, 141 prune
@pytest.mark.parametrize("die_at", [3, 9, 19, 24, 33, 42, 55, 70, 90, 120, 130, 138, 140, 141])
def test_origin_dies_mid_release_and_comes_back(
    die_at: int, proxy: TcpProxy, azurite: Azurite, blobs: BlobServiceClient, release_of: Any, scripts: Path
) -> None:
    """Kill the path to the origin at request ``die_at`` of a release (validation, uploads, read-back,
    copies, pointer): the release fails or completes; a re-run after the origin returns completes it."""
    dest = via(
        proxy,
        azurite,
        RetrySettings(total=3, initial_backoff=0.01, increment_base=0.01, jitter=0, connection_timeout=2),
    )
    v1, v2 = release_of("v1.0.0", sizes=BIG), release_of("v1.1.0", sizes=BIG)
    releases = {"v1.0.0": v1, "v1.1.0": v2}
    publish(v1, dest, R, scripts=scripts)
    proxy.stats.requests = 0
    proxy.kill_at(die_at)
    try:
        publish(v2, dest, R, scripts=scripts)
        finished = True
    except KmError as exc:
        finished = False
        assert "cannot reach" in str(exc) or "HTTP" in str(exc), str(exc)
    assert proxy.stats.kills >= 1 or finished  # parallel block uploads can hit the dead proxy twice
    assert assert_consistent(blobs, releases, latest=finished) in ("v1.0.0", "v1.1.0")
    if not finished:
        assert not proxy.alive
    proxy.restart()
    out = publish(v2, dest, R, scripts=scripts)
    assert assert_consistent(blobs, releases) == "v1.1.0"
    assert out.bytes_uploaded <= sum(f.digest.size for f in v2.files)
    again = publish(v2, dest, R, scripts=scripts)
    assert again.bytes_uploaded == 0 and not again.changed_public
