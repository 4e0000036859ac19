"""``inv verify`` on its own checks the release signatures (issue 10), as the release's verify step does.

A local release signed with a key file (``KM_SIGNING_KEY``) is served on loopback; the task then
trusts build/keys plus that local key (a local site). A good signature passes; a signature
replaced by another key's, or a missing ``SHA256SUMS.p256``, fails with one error line.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from kmrelease.artifacts import Release
from kmrelease.release import ReleaseRequest, release
from kmrelease.serve import SiteBackend, running
from kmrelease.sign.keys import TrustedKey
from kmrelease.sign.statement import P256, SIG
from kmrelease.sign.trust import verify_trust
from kmrelease.ui import Reporter
from kmrelease.version import parse_version
from tests.integration.test_tasks_cli import inv, one_error_line
from tests.support.releases import PROJECT, ROOT
from tests.support.signing import new_key

VERSION = "v1.0.0"


@pytest.fixture
def signed_site(
    tmp_path: Path, release_v1: Release, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, str]]:
    """A local site holding VERSION signed with a throwaway key file, and its loopback URL."""
    new_key(tmp_path / "release-key.pem")
    monkeypatch.setenv("KM_SIGNING_KEY", str(tmp_path / "release-key.pem"))
    monkeypatch.setenv("KM_DIST_DIR", str(tmp_path / "dist"))
    prebuilt = tmp_path / "artifacts"
    prebuilt.mkdir()
    for name in PROJECT.build.file_names:
        shutil.copy2(release_v1.files[0].path.parent / name, prebuilt / name)
    site = tmp_path / "site"
    req = ReleaseRequest(parse_version(VERSION), site=str(site), prebuilt=prebuilt)
    release(req, Reporter(quiet=True))
    with running(SiteBackend(site)) as url:
        yield site / "releases" / VERSION, url


def test_standalone_verify_checks_the_signatures(tmp_path: Path, signed_site: tuple[Path, str]) -> None:
    folder, url = signed_site
    good = inv("verify", "--base-url", url, "--version", VERSION)
    assert good.returncode == 0, good.stdout + good.stderr

    # tampered: SHA256SUMS.p256 signed by a key nobody trusts
    other = new_key(tmp_path / "attacker.pem")
    statement = f"km-release-{VERSION}\n".encode() + (folder / "SHA256SUMS").read_bytes()
    original = (folder / P256).read_bytes()
    (folder / P256).write_bytes(other.sign(statement, ec.ECDSA(hashes.SHA256())))
    tampered = inv("verify", "--base-url", url, "--version", VERSION)
    assert "verify failed" in one_error_line(tampered)
    assert "its signatures do not verify" in tampered.stdout + tampered.stderr

    # missing: no SHA256SUMS.p256 at all
    (folder / P256).unlink()
    missing = inv("verify", "--base-url", url, "--version", VERSION)
    assert "verify failed" in one_error_line(missing)
    assert f"{P256}: HTTP 404" in missing.stdout + missing.stderr, missing.stdout + missing.stderr
    (folder / P256).write_bytes(original)
    assert inv("verify", "--base-url", url, "--version", VERSION).returncode == 0
    assert (folder / SIG).is_file()


def test_local_keys_are_trusted_on_loopback_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A local site (loopback) also trusts the local signing key; a public URL only build/keys."""
    key = new_key(tmp_path / "k.pem")
    monkeypatch.setenv("KM_SIGNING_KEY", str(tmp_path / "k.pem"))
    config = ROOT / "build" / "release.toml"
    mine = TrustedKey("", key.public_key()).der
    local = verify_trust(ROOT, config, "http://127.0.0.1:8080")
    public = verify_trust(ROOT, config, "https://get.kilometers.ai")
    assert mine in [t.der for t in local] and mine not in [t.der for t in public]
    assert [t.der for t in public] == [t.der for t in local if t.der != mine]
