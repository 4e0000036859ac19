"""What a release signature covers: ``SHA256SUMS`` bound to the release version (SPEC §13)."""

from __future__ import annotations

SIG = "SHA256SUMS.sig"  # armored SSH signature, namespace km-release-<v>, message = SHA256SUMS
P256 = "SHA256SUMS.p256"  # DER ECDSA P-256 / SHA-256 over statement(v, SHA256SUMS)
SIGNATURE_FILES: tuple[str, ...] = (SIG, P256)


def namespace(version: str) -> str:
    """The SSH signature namespace of a release: it binds the signature to the version."""
    return f"km-release-{version}"


def statement(version: str, sums: bytes) -> bytes:
    """The bytes ``SHA256SUMS.p256`` signs: ``km-release-<v>\\n`` then the exact bytes of SHA256SUMS."""
    return f"{namespace(version)}\n".encode() + sums
