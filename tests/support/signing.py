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


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def code_signing_ca(d: Path) -> Path:
    """A throwaway CA (``ca.crt``, ``ca.key``) made by openssl in ``d``, and an RSA code-signing
    certificate it issued (``cs.crt``, ``cs.key``): what the Authenticode tests sign with."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=km throwaway test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
             cwd=d)  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "cs.key", "-out", "cs.csr",
             "-subj", "/CN=km test code signing", cwd=d)  # fmt: skip
    (d / "ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n"
    )
    openssl("x509", "-req", "-in", "cs.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "cs.crt", "-days", "2", "-extfile", "ext", cwd=d)  # fmt: skip
    return d


def timestamping_certificate(ca: Path, d: Path) -> None:
    """An RSA time-stamping certificate (``tsa.crt``, ``tsa.key`` in ``d``; extended key usage
    timeStamping, critical) issued by the CA that :func:`code_signing_ca` made in ``ca``."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr",
             "-subj", "/CN=km test time-stamping authority", cwd=d)  # fmt: skip
    (d / "tsa.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=critical,timeStamping\n"
    )
    openssl("x509", "-req", "-in", "tsa.csr", "-CA", str(ca / "ca.crt"), "-CAkey", str(ca / "ca.key"),
             "-CAcreateserial", "-out", "tsa.crt", "-days", "2", "-extfile", "tsa.ext", cwd=d)  # fmt: skip
