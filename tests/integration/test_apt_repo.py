"""The APT repository on a local site: pool, signed index (checked with gpgv), every version kept."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from kmrelease.destinations.local import LocalSite
from kmrelease.errors import KmError
from kmrelease.packages import openpgp
from kmrelease.packages.apt import AptRepository, DebInput, parse_packages, pool_path
from kmrelease.packages.deb import DebSpec, build_deb
from kmrelease.packages.debver import debian_version
from kmrelease.packages.publishing import is_production
from kmrelease.packages.settings import PackageSettings
from kmrelease.ui import Reporter
from kmrelease.urlspace import Kind, key_of
from kmrelease.version import parse_version

pytestmark = pytest.mark.skipif(
    not (shutil.which("dpkg-deb") and shutil.which("gpg") and shutil.which("gpgv")),
    reason="needs dpkg-deb, gpg and gpgv",
)
S = PackageSettings()
QUIET = Reporter(quiet=True)


@pytest.fixture(scope="module")
def signer_cm(tmp_path_factory: pytest.TempPathFactory) -> object:
    root = tmp_path_factory.mktemp("project")
    cm = openpgp.signer(QUIET, production=False, root=root)
    sg = cm.__enter__()
    yield sg
    cm.__exit__(None, None, None)


def _debs(tmp: Path, site: LocalSite, version: str, salt: bytes = b"") -> list[DebInput]:
    v = parse_version(version)
    tmp.mkdir(parents=True, exist_ok=True)
    out: list[DebInput] = []
    for arch in ("amd64", "arm64"):
        binary = tmp / f"km-{version}-{arch}"
        binary.write_bytes(b"\x7fELF" + hashlib.sha256(version.encode() + arch.encode() + salt).digest() * 64)
        folder = tmp / f"out-{version}-{arch}{salt.hex()}"
        folder.mkdir()
        spec = DebSpec(S, debian_version(v), arch, 1764547200, version)
        path, _ = build_deb(spec, binary, tmp / f"dist-{version}-{arch}{salt.hex()}", folder)
        key = key_of(Kind.VERSIONED, version=version, file=path.name)
        site.put_bytes(key, path.read_bytes(), {})
        out.append(DebInput(path.name, key, path.read_bytes()))
    return out


def _gpgv(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    keyring = site / "apt" / "kilometers-archive-keyring.gpg"
    return subprocess.run(["gpgv", "--keyring", str(keyring), *args], capture_output=True, text=True)


def _versions(site: Path, suite: str, arch: str = "amd64") -> list[str]:
    text = (site / "apt" / "dists" / suite / "main" / f"binary-{arch}" / "Packages").read_text()
    return [p["Version"] for p in parse_packages(text)]


def test_publish_sign_keep_every_version_and_rerun_changes_nothing(tmp_path: Path, signer_cm: object) -> None:
    site = LocalSite(tmp_path / "site")
    repo = AptRepository(site, S, QUIET)
    sg = signer_cm  # type: ignore[assignment]
    first = repo.publish(parse_version("v1.0.0"), _debs(tmp_path, site, "v1.0.0"), sg)  # type: ignore[arg-type]
    assert first.pool_written and first.suites_written == ["stable", "unstable"] and first.keyring_written
    root = tmp_path / "site"
    dists = root / "apt" / "dists" / "stable"
    assert _gpgv(root, str(dists / "InRelease")).returncode == 0
    assert _gpgv(root, str(dists / "Release.gpg"), str(dists / "Release")).returncode == 0
    # the index's hashes: Release → Packages(.gz) → by-hash copies → the .deb in the pool
    release = (dists / "Release").read_text()
    for rel in ("main/binary-amd64/Packages", "main/binary-arm64/Packages.gz"):
        data = (dists / rel).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        assert f" {digest} {len(data):>16} {rel}\n" in release
        assert (dists / rel.rsplit("/", 1)[0] / "by-hash" / "SHA256" / digest).read_bytes() == data
    packages = gzip.decompress((dists / "main/binary-amd64/Packages.gz").read_bytes()).decode()
    (para,) = parse_packages(packages)
    deb = root / "apt" / para["Filename"]
    assert para["Filename"] == pool_path(S, "kilometers-cli_1.0.0_amd64.deb")
    assert hashlib.sha256(deb.read_bytes()).hexdigest() == para["SHA256"]
    assert int(para["Size"]) == deb.stat().st_size

    mtimes = {p: p.stat().st_mtime_ns for p in (root / "apt").rglob("*") if p.is_file()}
    again = repo.publish(parse_version("v1.0.0"), _debs(tmp_path / "again", site, "v1.0.0"), sg)  # type: ignore[arg-type]
    assert not again.changed
    assert {p: p.stat().st_mtime_ns for p in (root / "apt").rglob("*") if p.is_file()} == mtimes

    repo.publish(parse_version("v1.1.0"), _debs(tmp_path, site, "v1.1.0"), sg)  # type: ignore[arg-type]
    repo.publish(parse_version("v1.2.0-rc.1"), _debs(tmp_path, site, "v1.2.0-rc.1"), sg)  # type: ignore[arg-type]
    assert _versions(root, "stable") == ["1.0.0", "1.1.0"]  # pre-releases never reach stable
    assert _versions(root, "unstable", "arm64") == ["1.0.0", "1.1.0", "1.2.0~rc.1"]
    assert _gpgv(root, str(root / "apt/dists/unstable/InRelease")).returncode == 0


def test_a_tampered_index_fails_gpgv(tmp_path: Path, signer_cm: object) -> None:
    site = LocalSite(tmp_path / "site")
    AptRepository(site, S, QUIET).publish(parse_version("v1.0.0"), _debs(tmp_path, site, "v1.0.0"), signer_cm)  # type: ignore[arg-type]
    inrelease = tmp_path / "site/apt/dists/stable/InRelease"
    inrelease.write_text(inrelease.read_text().replace("Suite: stable", "Suite: stabl3"))
    assert _gpgv(tmp_path / "site", str(inrelease)).returncode != 0


def test_same_version_other_content_is_refused(tmp_path: Path, signer_cm: object) -> None:
    site = LocalSite(tmp_path / "site")
    repo = AptRepository(site, S, QUIET)
    repo.publish(parse_version("v1.0.0"), _debs(tmp_path, site, "v1.0.0"), signer_cm)  # type: ignore[arg-type]
    before = (tmp_path / "site/apt/dists/stable/InRelease").read_bytes()
    other = _debs(tmp_path / "x", LocalSite(tmp_path / "other"), "v1.0.0", salt=b"other")
    with pytest.raises(KmError, match="immutable"):
        repo.publish(parse_version("v1.0.0"), other, signer_cm)  # type: ignore[arg-type]
    assert (tmp_path / "site/apt/dists/stable/InRelease").read_bytes() == before


def test_production_needs_a_configured_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(openpgp.KEY_ENV, raising=False)
    monkeypatch.delenv(openpgp.KEY_FILE_ENV, raising=False)

    class Remote:
        label = "Azure Storage https://st.blob.core.windows.net"
        create_containers = False
        public = True  # what users install from (Destination.public)

    assert is_production(Remote()) and not is_production(LocalSite(tmp_path))  # type: ignore[arg-type]
    with (
        pytest.raises(KmError, match="development key"),
        openpgp.signer(QUIET, production=True, root=tmp_path),
    ):
        pass
    assert not (tmp_path / openpgp.DEV_KEY).exists()


def test_a_configured_key_signs_and_its_secret_is_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with openpgp.gpg_home() as gpg:
        gpg.run(
            "--passphrase",
            "s3cret-pass",
            "--quick-gen-key",
            "Prod <p@example.org>",
            "ed25519",
            "sign",
            "never",
            what="gen",
        )
        armored = gpg.run(
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "s3cret-pass",
            "--armor",
            "--export-secret-keys",
            what="export",
        )
    monkeypatch.setenv(openpgp.KEY_ENV, armored.decode())
    monkeypatch.setenv(openpgp.PASSPHRASE_ENV, "s3cret-pass")
    with openpgp.signer(Reporter(), production=True, root=tmp_path) as sg:
        signed = sg.clearsign(b"Origin: x\n")
    assert b"BEGIN PGP SIGNATURE" in signed
    monkeypatch.setenv(openpgp.PASSPHRASE_ENV, "wrong")
    with pytest.raises(KmError) as err, openpgp.signer(Reporter(), production=True, root=tmp_path) as sg:
        sg.clearsign(b"x")
    out = capsys.readouterr()
    for text in (str(err.value), out.out, out.err):
        assert "s3cret-pass" not in text and "PRIVATE KEY" not in text
    monkeypatch.setenv(openpgp.KEY_ENV, "not a key")
    with (
        pytest.raises(KmError, match=f"import of the key from {openpgp.KEY_ENV}"),
        openpgp.signer(QUIET, production=True, root=tmp_path),
    ):
        pass


def test_the_edge_serves_the_repository_with_apt_quoting(tmp_path: Path, signer_cm: object) -> None:
    """apt asks for ``%7e`` and ``%2b`` in .deb names; the edge answers with the table's headers."""
    import requests

    from kmrelease.serve import SiteBackend, running

    site = LocalSite(tmp_path / "site")
    debs = _debs(tmp_path, site, "v1.3.0-rc.1")
    AptRepository(site, S, QUIET).publish(parse_version("v1.3.0-rc.1"), debs, signer_cm)  # type: ignore[arg-type]
    with running(SiteBackend(tmp_path / "site")) as base:
        deb = requests.get(
            f"{base}/apt/pool/main/k/kilometers-cli/kilometers-cli_1.3.0%7erc.1_amd64.deb", timeout=10
        )
        assert deb.status_code == 200 and deb.content == debs[0].data
        assert deb.headers["Cache-Control"] == "public, max-age=86400, immutable"
        assert deb.headers["Content-Type"] == "application/vnd.debian.binary-package"
        index = requests.get(f"{base}/apt/dists/unstable/InRelease", timeout=10)
        assert index.status_code == 200 and index.headers["Cache-Control"] == "public, max-age=300"
        keyring = requests.get(f"{base}/apt/kilometers-archive-keyring.gpg", timeout=10)
        assert keyring.headers["Content-Type"] == "application/pgp-keys"
        assert requests.get(f"{base}/apt/dists/stable/InRelease", timeout=10).status_code == 404
        assert requests.get(f"{base}/apt/pool/..%2f..%2fmeta/version", timeout=10).status_code == 404


def test_verify_follows_inrelease_to_packages_to_the_sums(tmp_path: Path, signer_cm: object) -> None:
    from kmrelease.packages.apt_verify import check_apt

    site = LocalSite(tmp_path / "site")
    v = parse_version("v1.0.0")
    debs = _debs(tmp_path, site, str(v))
    AptRepository(site, S, QUIET).publish(v, debs, signer_cm)  # type: ignore[arg-type]
    sums = {d.name: hashlib.sha256(d.data).hexdigest() for d in debs}
    root = tmp_path / "site"

    def fetch(path: str) -> bytes | None:
        p = root / path.lstrip("/")
        return p.read_bytes() if p.is_file() else None

    assert check_apt(fetch, v, sums, S) == []
    assert check_apt(fetch, v, {"km-linux-amd64": "0" * 64}, S) == []  # no .deb: nothing to check
    wrong = {**sums, debs[0].name: "0" * 64}
    assert any("SHA256SUMS says" in p for p in check_apt(fetch, v, wrong, S))
    packages = root / "apt/dists/stable/main/binary-arm64/Packages"
    packages.write_bytes(packages.read_bytes().replace(b"Section: utils", b"Section: admin"))
    assert any("not the one" in p and "binary-arm64" in p for p in check_apt(fetch, v, sums, S))
