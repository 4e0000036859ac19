"""The signer interface and its key file backend; the development key of local releases.

A signer signs a SHA-256 digest with an ECDSA P-256 key and returns ``(r, s)``; the
encodings (DER for ``SHA256SUMS.p256``, SSH for ``SHA256SUMS.sig``) are made from that,
so a backend that answers IEEE P1363 ``r‖s`` (Key Vault) and one that answers DER
(``cryptography``) look the same to the stage.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from ..errors import KmError

DEV_KEY = Path(".cache") / "keys" / "dev-release.pem"  # relative to the project root


class Signer(Protocol):
    """An ECDSA P-256 key that signs digests; its private half may live elsewhere (Key Vault)."""

    @property
    def label(self) -> str:
        """Where the key is, for messages (never key material)."""
        ...

    @property
    def development(self) -> bool:
        """Whether this is the local development key (never published to production)."""
        ...

    def public_key(self) -> ec.EllipticCurvePublicKey: ...

    def sign_digest(self, digest: bytes) -> tuple[int, int]:
        """ECDSA over a SHA-256 digest: ``(r, s)``."""
        ...


def check_p256(key: object, where: str) -> None:
    if not isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) or not isinstance(
        key.curve, ec.SECP256R1
    ):
        raise KmError(f"{where}: not an ECDSA P-256 key (release keys are P-256)")


class KeyFileSigner:
    """A PEM private key on disk (tests, local releases, the development key)."""

    def __init__(self, path: Path, *, development: bool = False) -> None:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError:
            raise KmError(f"signing key {path} does not exist") from None
        except (OSError, ValueError, TypeError) as exc:
            reason = "it is encrypted" if isinstance(exc, TypeError) else "not a PEM private key"
            raise KmError(f"signing key {path}: cannot be loaded ({reason})") from None
        check_p256(key, f"signing key {path}")
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self._key = key
        self._path = path
        self._development = development

    @property
    def label(self) -> str:
        return f"key file {self._path}"

    @property
    def development(self) -> bool:
        return self._development

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def sign_digest(self, digest: bytes) -> tuple[int, int]:
        der = self._key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        r, s = decode_dss_signature(der)
        return r, s


def write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """A new PEM (PKCS#8) private key file readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.replace(tmp, path)


def development_key(root: Path, *, create: bool) -> tuple[KeyFileSigner | None, bool]:
    """The project's development key (``.cache/keys/dev-release.pem``) and whether it was just made."""
    path = root / DEV_KEY
    if path.is_file():
        return KeyFileSigner(path, development=True), False
    if not create:
        return None, False
    write_private_key(path, ec.generate_private_key(ec.SECP256R1()))
    return KeyFileSigner(path, development=True), True
