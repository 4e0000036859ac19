"""End to end as an operator runs it: `inv release --dest azure` to Azurite, `inv serve --origin`
in front of it, `inv verify` through the edge, and `install.sh` installing a working km from it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from kmrelease.config import load_config
from kmrelease.scriptsettings import render_for
from kmrelease.sign.keys import public_pem
from kmrelease.sign.signers import KeyFileSigner
from tests.support.azurite import KEY, Azurite
from tests.support.fake_github_api import fake_github
from tests.support.releases import ROOT
from tests.support.signing import new_key

pytestmark = [pytest.mark.azurite, pytest.mark.slow]
VERSION = "v0.44.0"
INV = [sys.executable, "-m", "invoke"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def env(azurite: Azurite, blobs: BlobServiceClient, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "release.toml"
    # no Front Door: nothing to purge; a throwaway release key, trusted through keys_dir
    new_key(tmp_path / "release-key.pem")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "test.pem").write_text(
        public_pem(KeyFileSigner(tmp_path / "release-key.pem").public_key())
    )
    config.write_text(
        '[project]\npublic_base_url = "https://get.example.test"\n\n[azure]\n\n'
        f'[signing]\nkey_file = "{tmp_path / "release-key.pem"}"\nkeys_dir = "{tmp_path / "keys"}"\n'
    )
    return {
        **os.environ,
        "CI": "true",
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string(),
        "KM_RELEASE_CONFIG": str(config),
        "KM_DIST_DIR": str(tmp_path / "dist"),  # never the work tree's dist/
    }


@pytest.fixture
def edge(azurite: Azurite, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [*INV, "serve", "--origin", azurite.blob_endpoint, "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(url + "/version", timeout=2)
            break
        except requests.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                why = proc.stderr.read() if proc.stderr else ""
                raise RuntimeError(f"inv serve --origin did not start: {why}") from None
            time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def inv(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*INV, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def test_release_to_azurite_serve_verify_install(env: dict[str, str], edge: str, tmp_path: Path) -> None:
    with fake_github() as gh:
        env = {**env, "KM_BASE_URL": edge, "GITHUB_TOKEN": gh.token, "KM_GITHUB_API_URL": gh.api_url}
        rel = inv("release", "--version", VERSION, "--dest", "azure", "--skip-purge", env=env)
        assert rel.returncode == 0, rel.stdout + rel.stderr
        assert KEY not in rel.stdout + rel.stderr and gh.token not in rel.stdout + rel.stderr
        # the same file set on the GitHub Release of the tag, made latest
        release = gh.by_tag(VERSION)
        assert release is not None and not release.draft and gh.latest_id == release.id
        blob = BlobServiceClient.from_connection_string(env["AZURE_STORAGE_CONNECTION_STRING"])
        names = {b.name.split("/", 1)[1] for b in blob.get_container_client("releases").list_blobs(
            name_starts_with=f"{VERSION}/")}  # fmt: skip
        assert set(release.assets) == names and {"SHA256SUMS.sig", "SHA256SUMS.p256"} <= names

    # the edge relays the blobs' own headers
    r = requests.get(f"{edge}/version", timeout=10)
    assert r.status_code == 200 and r.text == f"{VERSION}\n"
    assert r.headers["Cache-Control"] == "public, max-age=300"
    r = requests.head(f"{edge}/releases/{VERSION}/km-linux-amd64", timeout=10)
    assert r.headers["Cache-Control"] == "public, max-age=86400, immutable"
    assert r.headers["Content-Type"] == "application/octet-stream"
    r = requests.get(f"{edge}/install.sh", timeout=10)
    pem = (tmp_path / "keys" / "test.pem").read_text()
    project = load_config(Path(env["KM_RELEASE_CONFIG"]))
    want = render_for(project, (ROOT / "scripts" / "install.sh").read_text(), "install.sh", pem)
    assert r.status_code == 200 and r.text == want  # the published copy trusts this release's keys
    assert 'DEFAULT_BASE_URL="https://get.example.test"' in want

    verify = inv("verify", "--base-url", edge, "--version", VERSION, env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # a re-run publishes nothing and still verifies (no GitHub token: that step is skipped)
    env.pop("GITHUB_TOKEN")
    again = inv("release", "--version", VERSION, "--dest", "azure", "--skip-purge", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 uploaded" in again.stderr and "GitHub Release skipped" in again.stderr, again.stderr

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed: install.sh not run")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    install = subprocess.run(
        ["sh", "-c", f"curl -fsSL {edge}/install.sh | sh"],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "KM_BASE_URL": edge,
            "KM_INSTALL_DIR": str(bindir),
            "KM_INSTALL_SOURCE": "cdn",
        },
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    km = subprocess.run([str(bindir / "km"), "--version"], capture_output=True, text=True, timeout=30)
    assert km.returncode == 0 and km.stdout.startswith(f"km {VERSION} ("), km.stdout + km.stderr
