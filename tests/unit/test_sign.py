"""Release signatures: made by the key file signer, checked by the real ssh-keygen and openssl."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from kmrelease.errors import KmError
from kmrelease.sign import keys, sshsig
from kmrelease.sign.settings import SigningSettings, read_settings, release_signer
from kmrelease.sign.signers import DEV_KEY, KeyFileSigner
from kmrelease.sign.stage import sign_release, signed_by
from kmrelease.sign.statement import P256, SIG, namespace
from kmrelease.ui import Reporter
from tests.support.signing import new_key, openssl_verify, ssh_verify

SUMS = b"".join(f"{c * 64}  km-{n}\n".encode() for c, n in (("a", "linux-amd64"), ("b", "linux-arm64")))


def make_dist(tmp: Path, version: str = "v1.2.3", sums: bytes = SUMS) -> Path:
    dist = tmp / version
    dist.mkdir(parents=True)
    (dist / "SHA256SUMS").write_bytes(sums)
    return dist


@pytest.fixture
def signer(tmp_path: Path) -> KeyFileSigner:
    new_key(tmp_path / "release.pem")
    return KeyFileSigner(tmp_path / "release.pem")


def test_both_signatures_verify_with_ssh_keygen_and_openssl(tmp_path: Path, signer: KeyFileSigner) -> None:
    dist = make_dist(tmp_path)
    assert sign_release(dist, "v1.2.3", signer, Reporter())
    pub = signer.public_key()
    assert ssh_verify(dist, "v1.2.3", pub) == 0
    assert openssl_verify(dist, "v1.2.3", pub) == 0
    assert (dist / SIG).read_text().startswith("-----BEGIN SSH SIGNATURE-----\n")


def test_another_versions_namespace_and_statement_are_refused(tmp_path: Path, signer: KeyFileSigner) -> None:
    dist = make_dist(tmp_path)
    sign_release(dist, "v1.2.3", signer, Reporter())
    pub = signer.public_key()
    # a signature replayed as if it were v1.2.4's
    assert ssh_verify(dist, "v1.2.4", pub) != 0
    assert ssh_verify(dist, "v1.2.3", pub, ns=namespace("v1.2.4")) != 0
    assert openssl_verify(dist, "v1.2.4", pub) != 0
    assert signed_by(dist, "v1.2.4", [keys.TrustedKey("k", pub)]) is None


def test_changed_sums_and_another_key_are_refused(tmp_path: Path, signer: KeyFileSigner) -> None:
    dist = make_dist(tmp_path)
    sign_release(dist, "v1.2.3", signer, Reporter())
    other = new_key(tmp_path / "other.pem").public_key()
    assert ssh_verify(dist, "v1.2.3", other) != 0
    assert openssl_verify(dist, "v1.2.3", other) != 0
    (dist / "SHA256SUMS").write_bytes(SUMS.replace(b"a" * 64, b"c" * 64))
    assert ssh_verify(dist, "v1.2.3", signer.public_key()) != 0
    assert openssl_verify(dist, "v1.2.3", signer.public_key()) != 0


def test_a_rerun_keeps_valid_signatures_and_replaces_stale_ones(
    tmp_path: Path, signer: KeyFileSigner
) -> None:
    dist = make_dist(tmp_path)
    sign_release(dist, "v1.2.3", signer, Reporter())
    first = (dist / SIG).read_bytes(), (dist / P256).read_bytes()
    assert not sign_release(dist, "v1.2.3", signer, Reporter())
    assert ((dist / SIG).read_bytes(), (dist / P256).read_bytes()) == first
    (dist / "SHA256SUMS").write_bytes(SUMS + f"{'d' * 64}  km-x\n".encode())
    assert sign_release(dist, "v1.2.3", signer, Reporter())
    assert openssl_verify(dist, "v1.2.3", signer.public_key()) == 0


def test_our_sshsig_reader_agrees_with_ssh_keygen(tmp_path: Path, signer: KeyFileSigner) -> None:
    """A signature made by ssh-keygen itself verifies with kmrelease.sign.sshsig (used for re-runs)."""
    if shutil.which("ssh-keygen") is None:
        pytest.skip("no ssh-keygen")
    import subprocess

    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key((tmp_path / "release.pem").read_bytes(), None)
    ssh_key = tmp_path / "id_ecdsa"
    ssh_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    ssh_key.chmod(0o600)
    msg = tmp_path / "msg"
    msg.write_bytes(SUMS)
    subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-f", str(ssh_key), "-n", "km-release-v1.0.0", str(msg)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    armored = (tmp_path / "msg.sig").read_text()
    assert sshsig.verify(armored, SUMS, "km-release-v1.0.0", signer.public_key())
    assert not sshsig.verify(armored, SUMS, "km-release-v1.0.1", signer.public_key())
    assert not sshsig.verify(armored, SUMS + b"x", "km-release-v1.0.0", signer.public_key())


def test_key_file_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(KmError, match="does not exist"):
        KeyFileSigner(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(KmError, match="not a PEM private key"):
        KeyFileSigner(tmp_path / "junk.pem")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "p384.pem").write_bytes(p384)
    with pytest.raises(KmError, match="not an ECDSA P-256 key"):
        KeyFileSigner(tmp_path / "p384.pem")


LOCAL: dict[str, Any] = {"public": False, "where": "local site"}
PUBLIC: dict[str, Any] = {"public": True, "where": "Azure Storage account x"}


def test_local_release_without_a_key_makes_the_development_key_once(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    signer = release_signer(SigningSettings(), tmp_path, **LOCAL, reporter=Reporter())
    assert signer.development and (tmp_path / DEV_KEY).is_file()
    assert (tmp_path / DEV_KEY).stat().st_mode & 0o077 == 0
    err = capfd.readouterr().err
    assert err.count("development key") == 1 and "made now" in err and "PRIVATE" not in err
    again = release_signer(SigningSettings(), tmp_path, **LOCAL, reporter=Reporter())
    assert keys.TrustedKey("", again.public_key()).der == keys.TrustedKey("", signer.public_key()).der
    assert "made earlier" in capfd.readouterr().err


def test_azure_refuses_unsigned_and_the_development_key(tmp_path: Path) -> None:
    with pytest.raises(KmError, match="refuses to publish unsigned"):
        release_signer(SigningSettings(), tmp_path, **PUBLIC, reporter=Reporter())
    assert not (tmp_path / DEV_KEY).exists()
    release_signer(SigningSettings(), tmp_path, **LOCAL, reporter=Reporter())
    with pytest.raises(KmError, match="development key"):
        release_signer(
            SigningSettings(key_file=str(DEV_KEY)),
            tmp_path,
            public=True,
            where="--dest azure",
            reporter=Reporter(),
        )


def test_settings_from_the_environment_and_the_signing_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "release.toml"
    conf.write_text('[signing]\nkey_file = "keys/release.pem"\n')
    monkeypatch.delenv("KM_SIGNING_KEY", raising=False)
    assert read_settings(conf) == SigningSettings(key_file="keys/release.pem", source="[signing]")
    assert read_settings(conf).keys_path(tmp_path) == tmp_path / "build" / "keys"
    monkeypatch.setenv("KM_SIGNING_KEY", "https://kv.vault.azure.net/keys/km/1")
    assert read_settings(conf).key_vault_key == "https://kv.vault.azure.net/keys/km/1"
    monkeypatch.delenv("KM_SIGNING_KEY")
    conf.write_text('[signing]\nkey_file = "a"\nkey_vault_key = "https://x/keys/a/b"\n')
    with pytest.raises(KmError, match="choose one"):
        read_settings(conf)
    conf.write_text('[signing]\nkey = "a"\n')
    with pytest.raises(KmError, match="unknown keys"):
        read_settings(conf)


def test_repository_keys_and_what_is_derived_from_them() -> None:
    root = Path(__file__).resolve().parents[2]
    trusted = keys.load_trusted(root / "build" / "keys")
    assert len(trusted) == 2 and [t.name for t in trusted] == sorted(t.name for t in trusted)
    value = keys.trusted_keys_value(trusted)
    assert value.count(",") == 1 and all(len(part) == 124 for part in value.split(","))
    lines = keys.allowed_signers(trusted, keys.principal("https://get.kilometers.ai")).splitlines()
    assert all(line.startswith("release@get.kilometers.ai ecdsa-sha2-nistp256 ") for line in lines)
    assert keys.pem_bundle(trusted).count("-----BEGIN PUBLIC KEY-----") == 2
