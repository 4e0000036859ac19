"""A local release is signed: SHA256SUMS.sig and .p256 published, copied into latest/, checked by
ssh-keygen and openssl; a re-run keeps them; Azure refuses to publish unsigned."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from kmrelease.artifacts import Release
from kmrelease.errors import KmError
from kmrelease.release import ReleaseRequest, release
from kmrelease.serve import SiteBackend, running
from kmrelease.sign.keys import TrustedKey, public_pem
from kmrelease.sign.statement import P256, SIG
from kmrelease.ui import Reporter
from kmrelease.verify import verify
from kmrelease.version import parse_version
from tests.integration.test_tasks_cli import inv, one_error_line
from tests.support.releases import PROJECT, ROOT
from tests.support.signing import new_key, openssl_verify, ssh_verify

QUIET = Reporter(quiet=True)


@pytest.fixture
def signing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ec.EllipticCurvePrivateKey:
    key = new_key(tmp_path / "release-key.pem")
    monkeypatch.setenv("KM_SIGNING_KEY", str(tmp_path / "release-key.pem"))
    return key


@pytest.fixture
def prebuilt(tmp_path: Path, release_v1: Release, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KM_DIST_DIR", str(tmp_path / "dist"))
    root = tmp_path / "artifacts"
    root.mkdir()
    for name in PROJECT.build.file_names:
        shutil.copy2(release_v1.files[0].path.parent / name, root / name)
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
    # /keys/allowed_signers as published works with ssh-keygen as README shows
    published = site / "keys" / "allowed_signers"
    assert published.read_text().count("release@get.kilometers.ai ecdsa-sha2-nistp256 ") == 3
    with (site / "releases" / "v1.0.0" / "SHA256SUMS").open("rb") as stdin:
        proc = subprocess.run(
            ["ssh-keygen", "-Y", "verify", "-f", str(published), "-I", "release@get.kilometers.ai",
             "-n", "km-release-v1.0.0", "-s", str(site / "releases" / "v1.0.0" / SIG)],
            stdin=stdin, capture_output=True, timeout=30,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # build/keys plus this local release's own key, in /keys/release-keys.pem and the published scripts
    mine = public_pem(pub)
    pems = (site / "keys" / "release-keys.pem").read_text()
    assert pems.count("BEGIN PUBLIC KEY") == 3 and mine in pems
    assert mine.strip() in (site / "install" / "install.sh").read_text()
    assert mine.strip() in (site / "install" / "install.ps1").read_text()
    assert mine.strip() not in (ROOT / "scripts" / "install.sh").read_text()
    again = release(req, QUIET)  # the signatures are kept: nothing differs, nothing is refused
    assert again.uploaded == [] and SIG in again.skipped


def test_verify_refuses_a_replaced_signature(
    tmp_path: Path, prebuilt: Path, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    site = tmp_path / "site"
    release(ReleaseRequest(parse_version("v1.0.0"), site=str(site), prebuilt=prebuilt), QUIET)
    trusted = [TrustedKey("test key", signing_key.public_key())]
    folder = site / "releases" / "v1.0.0"
    other = new_key(tmp_path / "attacker.pem")
    (folder / P256).write_bytes(other.sign(b"km-release-v1.0.0\n" + (folder / "SHA256SUMS").read_bytes(),
                                           ec.ECDSA(hashes.SHA256())))  # fmt: skip
    with running(SiteBackend(site)) as url:
        with pytest.raises(KmError, match="verify failed"):
            verify(url, QUIET, PROJECT.build, version="v1.0.0", trusted=trusted)
        verify(url, QUIET, PROJECT.build, version="v1.0.0")  # without keys it only checks hashes


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


def test_a_second_release_rewrites_no_byte_of_the_signatures(
    tmp_path: Path, prebuilt: Path, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    req = ReleaseRequest(parse_version("v1.0.0"), site=str(tmp_path / "site"), prebuilt=prebuilt)
    release(req, QUIET)
    dist = tmp_path / "dist" / "v1.0.0"
    before = {n: (dist / n).stat() for n in (SIG, P256)}
    release(req, QUIET)
    after = {n: (dist / n).stat() for n in (SIG, P256)}
    assert {n: (s.st_ino, s.st_mtime_ns) for n, s in after.items()} == {
        n: (s.st_ino, s.st_mtime_ns) for n, s in before.items()
    }


def test_azure_release_without_a_key_is_refused_before_anything(tmp_path: Path) -> None:
    conf = tmp_path / "release.toml"
    conf.write_text('[project]\npublic_base_url = "https://get.example.test"\n')
    proc = inv("release", "--version", "v0.0.7", "--dest", "azure", "--dry-run",
               env={"KM_RELEASE_CONFIG": str(conf), "KM_SIGNING_KEY": "",
                    "AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"})  # fmt: skip
    assert "refuses to publish unsigned" in one_error_line(proc)
