"""The Key Vault signer against a local HTTPS server speaking Key Vault's keys REST protocol."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from kmrelease.errors import KmError
from kmrelease.sign.keys import public_pem
from kmrelease.sign.keyvault import RETRIES, KeyVaultSigner, parse_key_id
from kmrelease.sign.stage import sign_release
from kmrelease.ui import Reporter
from tests.support.fake_keyvault import Token, fake_keyvault
from tests.support.signing import openssl_verify, ssh_verify

SUMS = f"{'e' * 64}  km-linux-amd64\n".encode()


def signer_for(kv: Any, token: Token) -> KeyVaultSigner:
    return KeyVaultSigner(
        kv.key_id,
        token,
        client_options={"connection_verify": kv.ca_file, "verify_challenge_resource": False,
                        "retry_backoff_factor": 0.01},
    )  # fmt: skip


def test_signs_through_key_vault_and_ssh_keygen_and_openssl_agree(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    token = Token()
    with fake_keyvault() as kv:
        signer = signer_for(kv, token)
        dist = tmp_path / "v2.0.0"
        dist.mkdir()
        (dist / "SHA256SUMS").write_bytes(SUMS)
        assert sign_release(dist, "v2.0.0", signer, Reporter())
        assert public_pem(signer.public_key()).encode() == kv.public_pem()
    # one digest for SHA256SUMS.p256, one for the SSH signature's signed data
    assert [s["alg"] for s in kv.signs] == ["ES256", "ES256"]
    assert all(len(s["digest"]) == 32 for s in kv.signs)
    assert any(auth == "Bearer kv-secret-token" for _, _, auth in kv.requests)
    assert token.scopes and token.scopes[0] == ("https://vault.azure.net/.default",)
    pub = serialization.load_pem_public_key(kv.public_pem())
    assert ssh_verify(dist, "v2.0.0", pub) == 0  # type: ignore[arg-type]
    assert openssl_verify(dist, "v2.0.0", pub) == 0  # type: ignore[arg-type]
    assert "kv-secret-token" not in capfd.readouterr().err


def test_forbidden_is_one_line_naming_the_permission(tmp_path: Path) -> None:
    with fake_keyvault("forbidden") as kv:
        signer = signer_for(kv, Token())
        with pytest.raises(KmError) as err:
            signer.sign_digest(b"\0" * 32)
    msg = str(err.value)
    assert "sign refused (HTTP 403 Forbidden)" in msg and "keys/sign" in msg
    assert "\n" not in msg and "kv-secret-token" not in msg


def test_throttled_once_then_retried_after_retry_after(tmp_path: Path) -> None:
    with fake_keyvault("throttle", throttled=1, retry_after="1") as kv:
        signer = signer_for(kv, Token())
        started = time.monotonic()
        r, s = signer.sign_digest(b"\1" * 32)
        waited = time.monotonic() - started
    assert r > 0 and s > 0
    assert [bool(x.get("throttled")) for x in kv.signs] == [True, False]
    assert waited >= 0.9  # Retry-After: 1 was obeyed


def test_throttled_forever_gives_up_after_bounded_retries(tmp_path: Path) -> None:
    with fake_keyvault("throttle", throttled=-1) as kv:
        signer = signer_for(kv, Token())
        with pytest.raises(KmError, match=r"HTTP 429 .*gave up after 3 retries"):
            signer.sign_digest(b"\2" * 32)
    assert len(kv.signs) == RETRIES + 1


def test_key_ids_must_name_a_version_over_https() -> None:
    assert parse_key_id("https://kv.vault.azure.net/keys/km/abc") == (
        "https://kv.vault.azure.net",
        "km",
        "abc",
    )
    for bad in ("http://kv/keys/km/abc", "https://kv/keys/km", "https://kv/secrets/km/abc", "km"):
        with pytest.raises(KmError, match="expected https://"):
            parse_key_id(bad)


def test_export_writes_the_vault_keys_public_half_once(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from kmrelease.sign.export import export_public_key

    folder = tmp_path / "keys"
    with fake_keyvault() as kv:
        signer = signer_for(kv, Token())
        export_public_key(signer, folder, "next", Reporter(), dry_run=True)
        assert not folder.exists()
        path = export_public_key(signer, folder, "next", Reporter(), dry_run=False)
        assert path.read_bytes() == kv.public_pem()
        export_public_key(signer, folder, "next", Reporter(), dry_run=False)  # the same key: nothing to do
        with pytest.raises(KmError, match="already holds this key"):
            export_public_key(signer, folder, "again", Reporter(), dry_run=False)
        (folder / "other.pem").write_text(public_pem(ec.generate_private_key(ec.SECP256R1()).public_key()))
        with pytest.raises(KmError, match="holds another key"):
            export_public_key(signer, folder, "other", Reporter(), dry_run=False)
        with pytest.raises(KmError, match="letters, digits"):
            export_public_key(signer, folder, "../x", Reporter(), dry_run=False)
