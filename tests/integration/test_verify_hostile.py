"""`inv verify` against servers it does not control (issue 13 points 1 and 3): bounded waits,
capped bodies, strict checksum files, refused redirects, sanitised server text."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kmrelease.destinations.local import LocalSite
from kmrelease.errors import KmError
from kmrelease.httpbounds import Limits, excerpt, redirect_allowed
from kmrelease.serve import SiteBackend, running
from kmrelease.ui import Reporter
from kmrelease.verify import VERSION_CAP, sha256_file_claim, verify
from tests.integration.test_tasks_cli import one_error_line
from tests.support import hostile
from tests.support.fake_release import make_dist, make_scripts
from tests.support.releases import PROJECT, publish

QUIET = Reporter(quiet=True)
FAST = Limits(connect=1, stall=1, total=1, attempts=2)
ROOT = Path(__file__).resolve().parents[2]


def run_verify(url: str, limits: Limits = FAST) -> tuple[float, BaseException | None]:
    return hostile.elapsed(lambda: verify(url, QUIET, PROJECT.build, limits=limits))


def findings_of(exc: BaseException | None, capsys: pytest.CaptureFixture[str]) -> str:
    assert isinstance(exc, KmError), exc
    return str(exc) + "\n" + capsys.readouterr().err


def test_accept_and_never_answer_is_bounded() -> None:
    with hostile.HostileServer(hostile.black_hole) as srv:
        took, exc = run_verify(srv.url)
    assert isinstance(exc, KmError)
    assert "cannot reach" in str(exc) and "no answer within 1s" in str(exc) and "2 attempts" in str(exc)
    assert took < 6, took  # 2 attempts × 1 s stall + backoff


def test_stall_after_the_headers_is_bounded() -> None:
    with hostile.HostileServer(hostile.stall_after_headers) as srv:
        took, exc = run_verify(srv.url)
    assert isinstance(exc, KmError) and "stalled, no data for 1s" in str(exc)
    assert took < 4, took


def test_a_trickle_is_cut_at_the_deadline() -> None:
    with hostile.HostileServer(hostile.trickle(interval=0.1, size=500)) as srv:
        took, exc = run_verify(srv.url)
    assert isinstance(exc, KmError) and "too slow" in str(exc)
    assert took < 4, took  # 500 bytes at 10/s would take 50 s


@pytest.mark.parametrize("announce", [True, False])
def test_a_10_mb_version_is_refused_at_the_cap(announce: bool, capsys: pytest.CaptureFixture[str]) -> None:
    with hostile.HostileServer(hostile.huge(10 * 1024 * 1024, announce=announce)) as srv:
        took, exc = run_verify(srv.url, Limits(connect=1, stall=2, total=10))
    text = findings_of(exc, capsys)
    assert f"/version: larger than {VERSION_CAP} bytes" in text
    assert took < 5, took


@pytest.mark.parametrize(
    "location", ["http://192.0.2.1/version", "ftp://127.0.0.1/version", "file:///etc/passwd"]
)
def test_redirects_off_https_are_refused_without_following(
    location: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with hostile.HostileServer(hostile.redirect(location)) as srv:
        took, exc = run_verify(srv.url)
    text = findings_of(exc, capsys)
    assert f"redirects to {location!r}: refused (only https, or http on loopback)" in text
    assert took < 3, took  # 192.0.2.1 (TEST-NET) never answers: it was not contacted


def test_a_redirect_loop_stops_after_a_few(capsys: pytest.CaptureFixture[str]) -> None:
    with hostile.HostileServer(hostile.redirect("/version")) as srv:
        _, exc = run_verify(srv.url)
        assert srv.accepted <= 2 * 4  # /version and /health: 1 request + 3 redirects each
    assert "more than 3 redirects" in findings_of(exc, capsys)


def test_redirect_rules() -> None:
    assert redirect_allowed("https://cdn.example/x")
    assert redirect_allowed("http://127.0.0.1:8080/x") and redirect_allowed("http://[::1]/x")
    assert redirect_allowed("http://localhost/x")
    assert not redirect_allowed("http://cdn.example/x") and not redirect_allowed("http://10.0.0.1/x")


@pytest.mark.parametrize(
    "payload",
    [
        b"\x1b[2J\x1b]0;owned\x07v1.0.0\n",
        b"v1.0.0; rm -rf / #\n",
        b"$(reboot)`id`\n",
        "v1\u0660.0.0\n".encode(),
    ],
)
def test_hostile_version_text_is_sanitised(payload: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    with hostile.HostileServer(hostile.body(payload)) as srv:
        _, exc = run_verify(srv.url)
    text = findings_of(exc, capsys)
    assert "/version: " in text and "is not a version" in text
    assert all(" " <= c <= "~" or c == "\n" for c in text), ascii(text)


def test_escape_sequences_in_headers_are_sanitised(capsys: pytest.CaptureFixture[str]) -> None:
    server = hostile.body(b"v1.0.0\n", headers="Content-Type: \x1b[31mred\x1b[0m\r\n")
    with hostile.HostileServer(server) as srv:
        _, exc = run_verify(srv.url)
    text = findings_of(exc, capsys)
    assert "Content-Type is '\\x1b[31mred\\x1b[0m'" in text
    assert "\x1b" not in text


def test_excerpt_is_short_and_printable() -> None:
    shown = excerpt("\x1b[1m" + "A" * 500 + "\u202e")
    assert len(shown) < 80 and shown.isascii() and "\x1b" not in shown and shown.endswith("...'")


# --- strict checksum files, against a real site behind the local edge ----------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    rel = make_dist(tmp_path / "dist", "v1.0.0")
    publish(rel, LocalSite(root), QUIET, scripts=make_scripts(tmp_path))
    return root


@pytest.fixture
def edge(site: Path) -> Iterator[str]:
    with running(SiteBackend(site)) as url:
        yield url


def test_a_clean_site_verifies(edge: str) -> None:
    assert verify(edge, QUIET, PROJECT.build).problems == []


@pytest.mark.parametrize("folder", ["v1.0.0", "latest"])
def test_a_sha256_file_naming_another_file_is_a_problem(
    site: Path, edge: str, folder: str, capsys: pytest.CaptureFixture[str]
) -> None:
    side = site / "releases" / folder / "km-linux-amd64.sha256"
    side.write_text(side.read_text().replace("km-linux-amd64", "km-linux-arm64"))
    with pytest.raises(KmError) as err:
        verify(edge, QUIET, PROJECT.build)
    text = findings_of(err.value, capsys)
    assert f"/releases/{folder}/km-linux-amd64: sha256 " in text
    assert "not one line '<sha256>  km-linux-amd64'" in text


def test_sha256_file_parsing_is_strict() -> None:
    h = "ab" * 32
    assert sha256_file_claim(f"{h}  km\n", "km") == h
    assert sha256_file_claim(f"{h.upper()}  km\n", "km") == h  # hex in any case
    assert sha256_file_claim(f"{h}  km", "km") == h
    for bad in (f"{h}  km-other\n", f"{h} km\n", f"{h}  km\n{h}  km\n", f"{h}0  km\n", f" {h}  km\n", ""):
        assert sha256_file_claim(bad, "km") is None, bad


def test_a_malformed_sums_file_is_a_problem(
    site: Path, edge: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sums = site / "releases" / "v1.0.0" / "SHA256SUMS"
    sums.write_text(sums.read_text() + "\x1b[31mgarbage\n")
    with pytest.raises(KmError) as err:
        verify(edge, QUIET, PROJECT.build)
    text = findings_of(err.value, capsys)
    assert "/releases/v1.0.0/SHA256SUMS: malformed checksum line" in text and "\x1b" not in text


def test_inv_verify_of_a_hostile_server_is_one_clean_line() -> None:
    with hostile.HostileServer(hostile.body(b"\x1b]0;owned\x07v9.9.9\n")) as srv:
        proc = subprocess.run(
            [sys.executable, "-m", "invoke", "verify", "--base-url", srv.url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "CI": "true"},
        )
    line = one_error_line(proc)
    assert line.startswith("error: verify failed: ")
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr


def test_the_default_limits_give_up_within_a_minute() -> None:
    """A black hole costs attempts × stall (+ backoff); a stalled body one stall; a small file the
    total: each well within a minute, so a stalled CDN counts as down."""
    d = Limits()
    assert d.connect <= 10 and d.attempts * max(d.connect, d.stall) + 0.5 <= 60
    assert d.total + VERSION_CAP / d.min_rate <= 60


def test_a_binary_over_the_cap_is_a_problem(
    edge: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kmrelease import verify as verify_mod

    monkeypatch.setattr(verify_mod, "BINARY_CAP", 1000)  # the fake binaries are ~100 KB
    with pytest.raises(KmError) as err:
        verify(edge, QUIET, PROJECT.build)
    text = findings_of(err.value, capsys)
    assert "/releases/v1.0.0/km-linux-amd64: larger than 1000 bytes" in text
