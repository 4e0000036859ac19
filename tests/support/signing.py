"""Helpers for signature tests: keys on disk and the real verifiers (ssh-keygen, openssl)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from kmrelease.sign import sshsig
from kmrelease.sign.keys import public_pem
from kmrelease.sign.signers import write_private_key
from kmrelease.sign.statement import P256, SIG, namespace, statement

PRINCIPAL = "release@get.kilometers.ai"


def new_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    write_private_key(path, key)
    return key


def ssh_verify(dist: Path, version: str, pub: ec.EllipticCurvePublicKey, *, ns: str | None = None) -> int:
    """``ssh-keygen -Y verify`` of dist/SHA256SUMS.sig as README tells users to run it; its exit code."""
    signers = dist / "allowed_signers.test"
    signers.write_text(f"{PRINCIPAL} {sshsig.openssh_line(pub)}\n")
    with (dist / "SHA256SUMS").open("rb") as stdin:
        proc = subprocess.run(
            ["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", PRINCIPAL,
             "-n", ns or namespace(version), "-s", str(dist / SIG)],
            stdin=stdin, capture_output=True, timeout=30,
        )  # fmt: skip
    signers.unlink()
    return proc.returncode


def openssl_verify(dist: Path, version: str, pub: ec.EllipticCurvePublicKey) -> int:
    """``openssl dgst -sha256 -verify`` of dist/SHA256SUMS.p256 over the statement; its exit code."""
    pem = dist / "key.pem.test"
    pem.write_text(public_pem(pub))
    data = statement(version, (dist / "SHA256SUMS").read_bytes())
    proc = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(pem), "-signature", str(dist / P256)],
        input=data, capture_output=True, timeout=30,
    )  # fmt: skip
    pem.unlink()
    return proc.returncode
