"""Release keys and signatures for tests (SPEC §13, the `SHA256SUMS.p256` encoding).

Until the engine signs releases, tests that need a signed site sign it here:
:func:`new_key` makes a P-256 key, :meth:`TestKey.sign_release` writes
``SHA256SUMS.p256`` beside a site's ``SHA256SUMS`` (DER ECDSA over
``km-release-<v>\\n`` followed by its bytes), and :attr:`TestKey.trusted` is the
value of ``-X main.TrustedKeys`` for a km that trusts the key.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def statement(version: str, sums: bytes) -> bytes:
    """What release ``version`` signs."""
    return b"km-release-" + version.encode("ascii") + b"\n" + sums


@dataclass(frozen=True)
class TestKey:
    __test__ = False  # not a pytest class

    private: ec.EllipticCurvePrivateKey

    @property
    def trusted(self) -> str:
        """Standard base64 of the DER SubjectPublicKeyInfo (one entry of main.TrustedKeys)."""
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")

    def sign(self, version: str, sums: bytes) -> bytes:
        return self.private.sign(statement(version, sums), ec.ECDSA(hashes.SHA256()))

    def sign_release(self, release_dir: Path, version: str) -> Path:
        """Write ``SHA256SUMS.p256`` for the ``SHA256SUMS`` in ``release_dir``."""
        sig = release_dir / "SHA256SUMS.p256"
        sig.write_bytes(self.sign(version, (release_dir / "SHA256SUMS").read_bytes()))
        return sig


def new_key() -> TestKey:
    return TestKey(ec.generate_private_key(ec.SECP256R1()))
