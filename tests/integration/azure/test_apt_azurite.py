"""The APT repository on Azure Storage (Azurite), served by the edge in front of the blob endpoint."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from kmrelease.destinations.azure import AzureBlobDestination
from kmrelease.packages import openpgp
from kmrelease.packages.apt import AptRepository, deb_inputs
from kmrelease.packages.deb import DebSpec, build_deb
from kmrelease.packages.debver import debian_version
from kmrelease.packages.publishing import is_production, promote_step
from kmrelease.packages.settings import PackageSettings
from kmrelease.serve import OriginBackend, running
from kmrelease.ui import Reporter
from kmrelease.urlspace import Kind, headers_of, key_of
from kmrelease.version import parse_version
from tests.support.azurite import Azurite

pytestmark = [
    pytest.mark.azurite,
    pytest.mark.skipif(
        not (shutil.which("dpkg-deb") and shutil.which("gpgv")), reason="needs dpkg-deb, gpgv"
    ),
]
S = PackageSettings()
QUIET = Reporter(quiet=True)


def _publish_debs(dest: AzureBlobDestination, tmp: Path, version: str) -> list[str]:
    names = []
    for arch in ("amd64", "arm64"):
        binary = tmp / f"km-{arch}"
        binary.write_bytes(b"\x7fELF" + (version + arch).encode() * 999)
        (tmp / arch).mkdir()
        spec = DebSpec(S, debian_version(parse_version(version)), arch, 1764547200, version)
        path, _ = build_deb(spec, binary, tmp / f"d-{arch}", tmp / arch)
        key = key_of(Kind.VERSIONED, version=version, file=path.name)
        dest.put_bytes(key, path.read_bytes(), headers_of(Kind.VERSIONED, path.name))
        names.append(path.name)
    return names


def test_apt_on_azurite_through_the_edge(
    dest: AzureBlobDestination, blobs: BlobServiceClient, azurite: Azurite, tmp_path: Path
) -> None:
    assert not is_production(dest)  # a loopback emulator may use the development key
    v = parse_version("v1.3.0-rc.1")
    names = _publish_debs(dest, tmp_path, str(v))
    with openpgp.signer(QUIET, production=False, root=tmp_path) as sg:
        repo = AptRepository(dest, S, QUIET)
        inputs = deb_inputs(v, names, lambda n: (tmp_path / n.split("_")[2][:5] / n).read_bytes())
        first = repo.publish(v, inputs, sg)
        assert first.pool_written and first.suites_written == ["unstable"]
        assert not repo.publish(v, inputs, sg).changed  # a re-run changes nothing
    props = blobs.get_blob_client("apt", f"pool/main/k/kilometers-cli/{names[0]}").get_blob_properties()
    assert props.content_settings.cache_control == "public, max-age=86400, immutable"
    assert props.content_settings.content_type == "application/vnd.debian.binary-package"
    index = blobs.get_blob_client("apt", "dists/unstable/InRelease").get_blob_properties()
    assert index.content_settings.cache_control == "public, max-age=300"
    with running(OriginBackend(azurite.blob_endpoint)) as base:
        keyring = requests.get(f"{base}/apt/kilometers-archive-keyring.gpg", timeout=10)
        inrelease = requests.get(f"{base}/apt/dists/unstable/InRelease", timeout=10)
        deb = requests.get(
            f"{base}/apt/pool/main/k/kilometers-cli/{names[0].replace('~', '%7e')}", timeout=10
        )
    assert keyring.status_code == inrelease.status_code == deb.status_code == 200
    (tmp_path / "k.gpg").write_bytes(keyring.content)
    (tmp_path / "InRelease").write_bytes(inrelease.content)
    gpgv = subprocess.run(
        ["gpgv", "--keyring", str(tmp_path / "k.gpg"), str(tmp_path / "InRelease")], capture_output=True
    )
    assert gpgv.returncode == 0, gpgv.stderr


def test_promote_restores_an_interrupted_index(
    dest: AzureBlobDestination, blobs: BlobServiceClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool got the .deb files but the run stopped before the index: `inv promote` finishes it."""
    (tmp_path / "build").mkdir(exist_ok=True)  # the project whose cache holds the development key
    (tmp_path / "build" / "release.toml").write_text('[project]\npublic_base_url = "https://x.test"\n')
    monkeypatch.setenv("KM_RELEASE_CONFIG", str(tmp_path / "build" / "release.toml"))
    v = parse_version("v1.2.0")
    names = _publish_debs(dest, tmp_path, str(v))
    with promote_step(v, dest, QUIET) as step:
        assert step(names)
    blobs.get_blob_client("apt", "dists/stable/InRelease").delete_blob()
    with promote_step(v, dest, QUIET) as step:
        assert step(names)  # the index is written again, signed
        assert not step(names)  # and then it is consistent: nothing more to do
    assert dest.read_bytes("apt/dists/stable/InRelease") is not None
