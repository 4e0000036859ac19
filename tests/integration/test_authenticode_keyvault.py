"""Authenticode through Key Vault: the real jsign (the pinned jar from Maven Central, on the
Java runtime) against a local HTTPS Key Vault speaking the certificates and RSA sign REST API;
the signed binaries are checked by `osslsigncode verify` against the throwaway CA that issued
the vault's certificate."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kmrelease.artifacts import Release
from kmrelease.authenticode import authenticode_key, authenticode_stage, is_signed
from kmrelease.errors import KmError
from kmrelease.jsign import JSIGN_VERSION, KeyVaultCertificate, jsign_jar, parse_certificate_url
from kmrelease.matrix import TARGETS
from kmrelease.sign.settings import read_settings
from kmrelease.ui import Reporter
from tests.support.fake_keyvault import FakeCertificateVault, Token, fake_certificate_vault
from tests.support.fake_tsa import fake_tsa, timestamped_by
from tests.support.releases import PROJECT, ROOT
from tests.support.signing import code_signing_ca

QUIET = Reporter(quiet=True)
EXES = [PROJECT.build.file_name(t) for t in TARGETS if t.os == "windows"]
JARS = ROOT / ".cache" / "kmrelease"  # shared with the engine's own cache: downloaded once


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA and an RSA code-signing certificate it issued (key: cs.key)."""
    return code_signing_ca(tmp_path_factory.mktemp("kv-ca"))


def trust(kv: FakeCertificateVault, where: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Java trusts the local vault's TLS certificate (a trust store of its own)."""
    store = where / "trust.p12"
    subprocess.run(["keytool", "-importcert", "-noprompt", "-file", kv.ca_file, "-alias", "kv",
                    "-keystore", str(store), "-storetype", "PKCS12", "-storepass", "changeit"],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    opts = f"-Djavax.net.ssl.trustStore={store} -Djavax.net.ssl.trustStorePassword=changeit"
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", opts)


def vault_keys(ca: Path) -> tuple[bytes, object]:
    cert = x509.load_pem_x509_certificate((ca / "cs.crt").read_bytes())
    key = serialization.load_pem_private_key((ca / "cs.key").read_bytes(), None)
    return cert.public_bytes(serialization.Encoding.DER), key


@pytest.fixture
def vault(ca: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCertificateVault]:
    with fake_certificate_vault(*vault_keys(ca)) as kv:
        trust(kv, tmp_path, monkeypatch)
        yield kv


@pytest.fixture
def dist(release_v1: Release, tmp_path: Path) -> Path:
    out = tmp_path / "v1.0.0"
    shutil.copytree(release_v1.files[0].path.parent, out)
    return out


def verify(exe: Path, ca: Path) -> int:
    cmd = ["osslsigncode", "verify", "-CAfile", str(ca / "ca.crt"), "-in", str(exe)]
    return subprocess.run(cmd, capture_output=True, timeout=60).returncode


def test_jsign_signs_through_key_vault_and_the_signatures_verify(
    vault: FakeCertificateVault, dist: Path, ca: Path
) -> None:
    cert = KeyVaultCertificate(vault.url, vault.name)
    signed = authenticode_stage(dist, EXES, cert, 0, QUIET, dry_run=False, cache=JARS, credential=Token())
    assert signed == EXES
    for name in EXES:
        assert is_signed(dist / name) and verify(dist / name, ca) == 0
    calls = [(m, p) for m, p, _ in vault.requests]
    assert ("GET", f"/certificates/{vault.name}") in calls
    assert calls.count(("POST", f"/keys/{vault.name}/0123456789abcdef0123456789abcdef/sign")) == len(EXES)
    assert {auth for _, _, auth in vault.requests} == {"Bearer kv-secret-token"}
    # signed already: nothing asked of the vault again
    before = len(vault.requests)
    assert authenticode_stage(dist, EXES, cert, 0, QUIET, dry_run=False, cache=JARS, credential=Token()) == []
    assert len(vault.requests) == before


def test_a_refused_sign_is_one_line_without_the_token_and_nothing_is_signed(
    ca: Path, dist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_certificate_vault(*vault_keys(ca), mode="forbidden") as kv:
        trust(kv, dist.parent, monkeypatch)
        cert = KeyVaultCertificate(kv.url, kv.name)
        with pytest.raises(KmError) as err:
            authenticode_stage(dist, EXES, cert, 0, QUIET, dry_run=False, cache=JARS, credential=Token())
    text = str(err.value)
    assert text.startswith(f"Key Vault certificate {kv.name} ({kv.url}): Authenticode signing failed")
    assert "\n" not in text and "kv-secret-token" not in text
    assert not any(is_signed(dist / n) for n in EXES)


def test_the_configuration_names_a_key_vault_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KM_AUTHENTICODE_CERT", "KM_AUTHENTICODE_KEY", "KM_AUTHENTICODE_KEYVAULT"):
        monkeypatch.delenv(name, raising=False)
    conf = tmp_path / "release.toml"
    conf.write_text('[signing]\nauthenticode_keyvault = "https://kv1.vault.azure.net/certificates/km-cs"\n'
                    'authenticode_timestamp_url = "http://timestamp.acs.microsoft.com"\n')  # fmt: skip
    read_settings(conf)  # the release key's reader accepts the Authenticode keys of [signing]
    got = authenticode_key(conf, tmp_path)
    assert got == KeyVaultCertificate(
        "https://kv1.vault.azure.net", "km-cs", "http://timestamp.acs.microsoft.com"
    )
    monkeypatch.setenv("KM_AUTHENTICODE_CERT", "cs.crt")
    with pytest.raises(
        KmError, match="^Authenticode: give a Key Vault certificate or a certificate and key file, not both$"
    ):
        authenticode_key(conf, tmp_path)
    for bad in ("http://kv1.vault.azure.net/certificates/x", "https://kv1.vault.azure.net/keys/x", "kv1"):
        with pytest.raises(
            KmError,
            match="^authenticode_keyvault must be https://<vault>.vault.azure.net/certificates/<name>",
        ):
            parse_certificate_url(bad)


def test_a_jsign_jar_with_other_bytes_is_refused(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "jsign.jar").write_bytes(b"PK\x03\x04 not the pinned jar")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    def handler(*args: object) -> Quiet:
        return Quiet(*args, directory=str(served))  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/jsign.jar"
        with pytest.raises(
            KmError, match=f"^jsign {JSIGN_VERSION} from {url} has sha256 [0-9a-f]{{64}}, not the pinned"
        ):
            jsign_jar(tmp_path / "cache", url=url)
    finally:
        server.shutdown()
        server.server_close()
    assert not (tmp_path / "cache" / f"jsign-{JSIGN_VERSION}.jar").exists()


def test_a_configured_time_stamping_authority_stamps_every_signature(
    vault: FakeCertificateVault, dist: Path, ca: Path
) -> None:
    with fake_tsa(ca) as tsa:
        cert = KeyVaultCertificate(vault.url, vault.name, tsa.url)
        signed = authenticode_stage(dist, EXES, cert, 0, QUIET, dry_run=False, cache=JARS, credential=Token())
    assert signed == EXES and tsa.requests == len(EXES)
    for name in EXES:
        assert verify(dist / name, ca) == 0
        assert timestamped_by(dist / name, ca) == "/CN=km test time-stamping authority"


def test_a_time_stamping_authority_that_is_down_fails_in_one_line_and_signs_nothing(
    vault: FakeCertificateVault, dist: Path, ca: Path
) -> None:
    with fake_tsa(ca, mode="down") as tsa:
        cert = KeyVaultCertificate(vault.url, vault.name, tsa.url)
        with pytest.raises(KmError) as err:
            authenticode_stage(dist, EXES, cert, 0, QUIET, dry_run=False, cache=JARS, credential=Token())
    assert tsa.requests == 3  # jsign's three attempts, then it gives up
    assert str(err.value) == (
        f"Key Vault certificate {vault.name} ({vault.url}): Authenticode signing failed: "
        f"Couldn't sign {EXES[0]}: Unable to complete the timestamping due to HTTP error: "
        "503 - time-stamping unavailable"
    )
    assert not any(is_signed(dist / n) for n in EXES)
