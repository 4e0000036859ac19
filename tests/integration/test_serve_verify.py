"""The local edge over real HTTP, and verification through it."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from kmrelease import urlspace
from kmrelease.artifacts import Release
from kmrelease.destinations.local import LocalSite
from kmrelease.errors import KmError
from kmrelease.serve import SiteBackend, backend_for, running
from kmrelease.sign.keys import load_trusted
from kmrelease.sign.published import key_documents
from kmrelease.ui import Reporter
from kmrelease.verify import verify
from tests.support.releases import PROJECT, ROOT, publish

BUILD = PROJECT.build

QUIET = Reporter(quiet=True)


@pytest.fixture
def site(tmp_path: Path, release_v1: Release, scripts_dir: Path) -> Path:
    root = tmp_path / "site"
    keys = key_documents(
        load_trusted(ROOT / "build" / "keys"), "release@get.kilometers.ai"
    )  # /keys/... (SPEC §13)
    publish(release_v1, LocalSite(root), QUIET, scripts=scripts_dir, documents=keys)
    return root


@pytest.fixture
def base(site: Path) -> Iterator[str]:
    with running(SiteBackend(site)) as url:
        yield url


def test_every_route_with_its_body_and_headers(base: str, site: Path, release_v1: Release) -> None:
    apt = (urlspace.Kind.APT_POOL, urlspace.Kind.APT_DISTS, urlspace.Kind.APT_KEYRING)  # test_apt_repo.py
    paths = [r.pattern for r in urlspace.ROUTES if "{" not in r.pattern and r.kind not in apt]
    paths += [f"/releases/v1.0.0/{f.name}" for f in release_v1.files]
    paths += [f"/releases/latest/{f.name}" for f in release_v1.files]
    for path in paths:
        resolved = urlspace.resolve(path)
        assert resolved is not None
        body = (site / resolved.key).read_bytes()
        for method in ("GET", "HEAD"):
            resp = requests.request(method, base + path, timeout=10)
            assert resp.status_code == 200, path
            assert resp.headers["Content-Type"] == resolved.headers["Content-Type"], path
            assert resp.headers["Cache-Control"] == resolved.headers["Cache-Control"], path
            assert resp.headers["Content-Length"] == str(len(body)), path
            assert resp.content == (body if method == "GET" else b""), path


def test_spec_headers_literally(base: str) -> None:
    def h(path: str) -> tuple[str, str]:
        r = requests.head(base + path, timeout=10)
        return r.headers["Cache-Control"], r.headers["Content-Type"]

    assert h("/") == ("public, max-age=600", "text/plain; charset=utf-8")
    assert h("/version") == ("public, max-age=300", "text/plain; charset=utf-8")
    assert h("/health") == ("no-cache", "application/json")
    assert h("/releases/v1.0.0/km-linux-amd64") == (
        "public, max-age=86400, immutable",
        "application/octet-stream",
    )
    assert h("/releases/latest/km-linux-amd64") == ("public, max-age=86400", "application/octet-stream")
    assert requests.get(base + "/version", timeout=10).text == "v1.0.0\n"
    assert requests.get(base + "/version?cachebust=1", timeout=10).text == "v1.0.0\n"


@pytest.mark.parametrize(
    "path",
    [
        "/meta/version",
        "/releases/v1.0.0/../../meta/version",
        "/releases/v9.9.9/km-linux-amd64",
        "/nope",
        "/releases/v1.0.0/.km-linux-amd64.tmp",
        "/releases/latest/",
    ],
)
def test_not_found(base: str, path: str) -> None:
    # raw socket: requests would normalise "../"
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 404"), data[:100]


def test_mutating_methods_are_refused(base: str) -> None:
    assert requests.put(base + "/version", data=b"v6.6.6\n", timeout=10).status_code == 405
    assert requests.get(base + "/version", timeout=10).text == "v1.0.0\n"


def test_verify_passes_on_an_intact_release(base: str) -> None:
    findings = verify(base, QUIET, BUILD)
    assert findings.problems == [] and findings.checked > 30
    verify(base, QUIET, BUILD, version="v1.0.0")


def test_verify_lists_every_problem(base: str, site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (site / "releases" / "latest" / "km-linux-arm64").write_bytes(b"corrupted at the edge")
    (site / "releases" / "v1.0.0" / "km-windows-amd64.exe.sha256").write_text(
        "0" * 64 + "  km-windows-amd64.exe\n"
    )
    health = json.loads((site / "meta" / "health").read_text())
    (site / "meta" / "health").write_text(json.dumps({**health, "version": "v0.0.1"}))
    with pytest.raises(KmError, match=r"verify failed: 3 problem\(s\)"):
        verify(base, Reporter(), BUILD)
    err = capsys.readouterr().err
    assert (
        "/releases/latest/km-linux-arm64: sha256 " + hashlib.sha256(b"corrupted at the edge").hexdigest()
        in err
    )
    assert "/releases/v1.0.0/km-windows-amd64.exe: sha256 " in err
    assert "km-windows-amd64.exe.sha256 says '" + "0" * 64 in err
    assert "/health: names 'v0.0.1', /version names v1.0.0" in err


def test_verify_fetches_artifacts_side_by_side_but_reports_them_in_manifest_order(
    base: str, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The artifacts are checked in parallel: every URL still counted once (as one at a time counts
    them), every problem listed in the manifest's order."""
    from kmrelease import verify as verify_module

    parallel = verify(base, QUIET, BUILD).checked
    monkeypatch.setattr(verify_module, "VERIFY_WORKERS", 1)
    assert verify(base, QUIET, BUILD).checked == parallel
    monkeypatch.undo()
    manifest = json.loads((site / "releases" / "v1.0.0" / "manifest.json").read_text())
    names = [a["name"] for a in manifest["artifacts"]]
    for name in reversed(names):  # damaged last-to-first: the order cannot come from the clock
        (site / "releases" / "latest" / name).write_bytes(b"damaged " + name.encode())
    warnings: list[str] = []
    reporter = Reporter(quiet=True)
    monkeypatch.setattr(reporter, "warn", warnings.append)
    with pytest.raises(KmError, match=rf"verify failed: {len(names)} problem\(s\)"):
        verify(base, reporter, BUILD)
    assert [w.split(":", 1)[0] for w in warnings] == [f"/releases/latest/{n}" for n in names]


def test_verify_of_a_missing_version(base: str) -> None:
    with pytest.raises(KmError, match="verify failed"):
        verify(base, QUIET, BUILD, version="v9.9.9")


def test_verify_of_an_unreachable_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(KmError, match=f"cannot reach http://127.0.0.1:{port}/version: connection failed"):
        verify(f"http://127.0.0.1:{port}", QUIET, BUILD)


def test_serve_refuses_a_missing_site(tmp_path: Path) -> None:
    with pytest.raises(KmError, match="does not exist"):
        backend_for(tmp_path / "nothing", None)
    with pytest.raises(KmError, match="--origin must be an http"):
        backend_for(None, "ftp://x")
