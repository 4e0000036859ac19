"""A local release is signed: SHA256SUMS.sig and .p256 published, copied into latest/, checked by
ssh-keygen and openssl; a re-run keeps them; Azure refuses to publish unsigned."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kmrelease import layout
from kmrelease.artifacts import Release
from kmrelease.matrix import TARGETS
from kmrelease.release import ReleaseRequest, release
from kmrelease.sign.statement import P256, SIG
from kmrelease.ui import Reporter
from kmrelease.version import parse_version
from tests.integration.test_tasks_cli import inv, one_error_line
from tests.support.signing import new_key, openssl_verify, ssh_verify

QUIET = Reporter(quiet=True)


@pytest.fixture
def signing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ec.EllipticCurvePrivateKey:
    key = new_key(tmp_path / "release-key.pem")
    monkeypatch.setenv("KM_SIGNING_KEY", str(tmp_path / "release-key.pem"))
    return key


@pytest.fixture
def prebuilt(tmp_path: Path, release_v1: Release, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(layout, "DIST", tmp_path / "dist")
    root = tmp_path / "artifacts"
    root.mkdir()
    for t in TARGETS:
        shutil.copy2(release_v1.files[0].path.parent / t.filename, root / t.filename)
    return root


def test_local_release_publishes_verifiable_signatures(
    tmp_path: Path, prebuilt: Path, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    site = tmp_path / "site"
    req = ReleaseRequest(parse_version("v1.0.0"), site=str(site), prebuilt=prebuilt)
    out = release(req, QUIET)
    assert SIG in out.uploaded and P256 in out.uploaded
    pub = signing_key.public_key()
    for folder in (site / "releases" / "v1.0.0", site / "releases" / "latest"):
        assert ssh_verify(folder, "v1.0.0", pub) == 0
        assert openssl_verify(folder, "v1.0.0", pub) == 0
        assert ssh_verify(folder, "v1.0.1", pub) != 0
    sums = (site / "releases" / "v1.0.0" / "SHA256SUMS").read_text()
    assert SIG not in sums and P256 not in sums
    again = release(req, QUIET)  # the signatures are kept: nothing differs, nothing is refused
    assert again.uploaded == [] and SIG in again.skipped


def test_signatures_published_by_an_interrupted_run_are_reused(
    tmp_path: Path, prebuilt: Path, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    site = tmp_path / "site"
    req = ReleaseRequest(parse_version("v1.0.0"), site=str(site), prebuilt=prebuilt)
    release(req, QUIET)
    published = (site / "releases" / "v1.0.0" / SIG).read_bytes()
    shutil.rmtree(tmp_path / "dist")  # another machine: a fresh dist/, the same binaries
    out = release(req, QUIET)
    assert out.uploaded == []
    assert (tmp_path / "dist" / "v1.0.0" / SIG).read_bytes() == published


def test_azure_release_without_a_key_is_refused_before_anything(tmp_path: Path) -> None:
    conf = tmp_path / "release.toml"
    conf.write_text('[project]\npublic_base_url = "https://get.example.test"\n')
    proc = inv("release", "--version", "v0.0.7", "--dest", "azure", "--dry-run",
               env={"KM_RELEASE_CONFIG": str(conf), "KM_SIGNING_KEY": ""})  # fmt: skip
    assert "refuses to publish unsigned" in one_error_line(proc)
