"""Stage: sign ``SHA256SUMS`` (after the checksums, before publishing).

Writes ``SHA256SUMS.p256`` (DER) and ``SHA256SUMS.sig`` (armored SSH signature) in
``dist/<v>/``. ECDSA signatures are randomised, so signatures that already verify with the
signer's key over the current ``SHA256SUMS`` are kept: a re-run changes nothing, and a
version already published is not refused as "other content".
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ..errors import KmError
from ..layout import SUMS, write_if_changed
from ..ui import Reporter
from . import sshsig
from .keys import TrustedKey
from .signers import Signer
from .statement import P256, SIG, namespace, statement


def verify_p256(signature: bytes, version: str, sums: bytes, key: ec.EllipticCurvePublicKey) -> bool:
    try:
        key.verify(signature, statement(version, sums), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_pair(sig: str, p256: bytes, version: str, sums: bytes, key: ec.EllipticCurvePublicKey) -> bool:
    """Both signatures of a release valid for ``key``."""
    return verify_p256(p256, version, sums, key) and sshsig.verify(sig, sums, namespace(version), key)


def signed_by(dist: Path, version: str, trusted: Sequence[TrustedKey]) -> TrustedKey | None:
    """The trusted key both signature files of ``dist`` verify with, or None."""
    try:
        sums, p256 = (dist / SUMS).read_bytes(), (dist / P256).read_bytes()
        sig = (dist / SIG).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return next((t for t in trusted if verify_pair(sig, p256, version, sums, t.key)), None)


def make_signatures(signer: Signer, version: str, sums: bytes) -> tuple[str, bytes]:
    """``(SHA256SUMS.sig text, SHA256SUMS.p256 bytes)``, each checked with the public key before use."""
    key = signer.public_key()
    r, s = signer.sign_digest(hashlib.sha256(statement(version, sums)).digest())
    p256 = encode_dss_signature(r, s)
    sig = sshsig.sign(sums, namespace(version), key, signer.sign_digest)
    if not verify_pair(sig, p256, version, sums, key):
        raise KmError(f"{signer.label}: the signature it made does not verify with its public key")
    return sig, p256


def sign_release(
    dist: Path, version: str, signer: Signer, reporter: Reporter, *, dry_run: bool = False
) -> bool:
    """Sign ``dist/SHA256SUMS``; whether new signatures were written."""
    reporter.step(f"sign {SUMS} of {version} with {signer.label}")
    if dry_run:
        reporter.info(f"would write {dist / SIG} and {dist / P256}")
        return False
    try:
        sums = (dist / SUMS).read_bytes()
    except FileNotFoundError:
        raise KmError(f"{dist / SUMS} is missing: run `inv checksums --version {version}`") from None
    key = signer.public_key()
    if signed_by(dist, version, [TrustedKey(signer.label, key)]):
        reporter.info(f"{SIG} and {P256} already sign this {SUMS}: kept")
        return False
    sig, p256 = make_signatures(signer, version, sums)
    write_if_changed(dist / SIG, sig)
    tmp = dist / f".{P256}.tmp"
    tmp.write_bytes(p256)
    tmp.replace(dist / P256)
    reporter.info(f"wrote {SIG} and {P256}")
    return True
