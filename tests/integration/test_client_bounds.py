"""The engine's HTTP clients against a server that accepts and never answers (issue 13 point 1):
each gives up with one clear line within its bound (connect/read timeouts reach the client,
retries are bounded). The purge's client is covered in tests/unit/test_cdn_purge.py, verify's in
tests/integration/test_verify_hostile.py."""

from __future__ import annotations

import pytest

from kmrelease import github
from kmrelease.destinations.azure import AzureBlobDestination, RetrySettings
from kmrelease.errors import KmError
from kmrelease.ui import Reporter
from tests.support import hostile

KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def test_github_api_black_hole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(github, "TIMEOUT", (1, 1))
    with hostile.HostileServer(hostile.black_hole) as srv:
        api = github._Api(srv.url, "o/r", "secret-token")
        took, exc = hostile.elapsed(lambda: api.request("GET", "/releases", what="list releases"))
        assert srv.accepted == github.ATTEMPTS  # a GET is retried, a bounded number of times
    assert isinstance(exc, KmError) and str(exc) == "list releases: cannot reach GitHub: ReadTimeout"
    assert took < 1.2 * github.ATTEMPTS + 2, took


def test_azure_storage_black_hole() -> None:
    retry = RetrySettings(total=1, initial_backoff=0.05, jitter=0, connection_timeout=1, read_timeout=1)
    with hostile.HostileServer(hostile.black_hole) as srv:
        conn = (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={KEY};BlobEndpoint={srv.url}/devstoreaccount1;"
        )
        dest = AzureBlobDestination.from_connection_string(conn, Reporter(quiet=True), retry=retry)
        took, exc = hostile.elapsed(dest.check_writable)
        assert 1 <= srv.accepted <= 2  # the request and its one retry
    assert isinstance(exc, KmError) and "after retries" in str(exc)
    assert KEY not in str(exc)
    assert took < 6, took


def test_github_api_trickle_is_cut_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(github, "BODY_LIMITS", github.Limits(stall=5, total=1, min_rate=64 * 1024))
    monkeypatch.setattr(github, "ATTEMPTS", 2)
    with hostile.HostileServer(hostile.trickle(interval=0.1, size=1000)) as srv:
        api = github._Api(srv.url, "o/r", "secret-token")
        took, exc = hostile.elapsed(lambda: api.request("GET", "/releases", what="list releases"))
    assert isinstance(exc, KmError) and "list releases: cannot reach GitHub: " in str(exc)
    assert "too slow" in str(exc) and "secret-token" not in str(exc)
    assert took < 6, took  # 1000 bytes at 10/s would take 100 s per attempt
