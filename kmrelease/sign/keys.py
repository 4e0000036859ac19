"""Trusted release keys: ``build/keys/*.pem`` (the current key and the next), and what is made of them.

- ``trusted_keys_value``: the ``{trusted_keys}`` ldflags placeholder, comma-separated standard
  base64 of each key's DER SubjectPublicKeyInfo (``-X main.TrustedKeys=…``);
- ``allowed_signers``: ssh-keygen allowed-signers lines, principal ``release@<public host>``;
- ``pem_bundle``: the keys as PEM public keys, in file-name order.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..errors import KmError
from . import sshsig
from .signers import check_p256

KEYS_DIR = Path("build") / "keys"  # relative to the project root
DEFAULT_HOST = "get.kilometers.ai"


@dataclass(frozen=True)
class TrustedKey:
    name: str  # file name, or "development key"
    key: ec.EllipticCurvePublicKey

    @property
    def der(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def pem(self) -> str:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()


def public_pem(key: ec.EllipticCurvePublicKey) -> str:
    return TrustedKey("", key).pem


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise KmError(f"{path}: not a PEM public key ({type(exc).__name__})") from None
    check_p256(key, str(path))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def load_trusted(folder: Path) -> list[TrustedKey]:
    """The keys of ``folder`` (``build/keys/``), sorted by file name (none: an empty list)."""
    if not folder.is_dir():
        return []
    return [TrustedKey(p.name, load_public_key(p)) for p in sorted(folder.glob("*.pem"))]


def with_key(trusted: Sequence[TrustedKey], key: ec.EllipticCurvePublicKey, name: str) -> list[TrustedKey]:
    """``trusted`` plus ``key`` when it is not already among them."""
    extra = TrustedKey(name, key)
    if any(t.der == extra.der for t in trusted):
        return list(trusted)
    return [*trusted, extra]


def is_trusted(trusted: Sequence[TrustedKey], key: ec.EllipticCurvePublicKey) -> bool:
    der = TrustedKey("", key).der
    return any(t.der == der for t in trusted)


def trusted_keys_value(trusted: Sequence[TrustedKey]) -> str:
    return ",".join(base64.b64encode(t.der).decode() for t in trusted)


def principal(public_base_url: str) -> str:
    """``release@<public host>``: the identity ``ssh-keygen -Y verify -I`` checks."""
    host = urlsplit(public_base_url).hostname if public_base_url else None
    return f"release@{host or DEFAULT_HOST}"


def allowed_signers(trusted: Sequence[TrustedKey], who: str) -> str:
    return "".join(f"{who} {sshsig.openssh_line(t.key)}\n" for t in trusted)


def pem_bundle(trusted: Sequence[TrustedKey]) -> str:
    return "".join(t.pem for t in trusted)
