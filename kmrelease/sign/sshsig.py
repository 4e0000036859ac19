"""The armored SSH signature format (OpenSSH ``PROTOCOL.sshsig``) for ECDSA P-256 keys.

No Python library writes it (``sshsig`` on PyPI only verifies), so this is the small
documented wire format; key blobs come from ``cryptography``. ::

    byte[6] "SSHSIG"  uint32 1  string publickey  string namespace  string reserved
    string hash_algorithm  string signature

The signature is over ``"SSHSIG" string(namespace) string("") string("sha512")
string(SHA-512(message))`` with the key's own algorithm (ecdsa-sha2-nistp256: ECDSA over
its SHA-256), encoded as ``string("ecdsa-sha2-nistp256") string(mpint r, mpint s)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

MAGIC = b"SSHSIG"
VERSION = 1
HASH = "sha512"
KEY_TYPE = b"ecdsa-sha2-nistp256"
BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"
LINE = 70  # ssh-keygen's armor width

SignDigest = Callable[[bytes], tuple[int, int]]  # SHA-256 digest → (r, s)


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _mpint(n: int) -> bytes:
    return _string(n.to_bytes((n.bit_length() + 8) // 8, "big") if n else b"")


def public_blob(key: ec.EllipticCurvePublicKey) -> bytes:
    """The SSH wire encoding of a P-256 public key (what ``ecdsa-sha2-nistp256 AAAA…`` holds)."""
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return base64.b64decode(line.split()[1])


def openssh_line(key: ec.EllipticCurvePublicKey) -> str:
    """``ecdsa-sha2-nistp256 AAAA…``: the key as an allowed_signers / authorized_keys entry."""
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def signed_data(message: bytes, namespace: str) -> bytes:
    return (
        MAGIC
        + _string(namespace.encode())
        + _string(b"")
        + _string(HASH.encode())
        + _string(hashlib.sha512(message).digest())
    )


def sign(message: bytes, namespace: str, key: ec.EllipticCurvePublicKey, sign_digest: SignDigest) -> str:
    """The armored SSH signature of ``message`` in ``namespace``, made by ``sign_digest``."""
    r, s = sign_digest(hashlib.sha256(signed_data(message, namespace)).digest())
    signature = _string(KEY_TYPE) + _string(_mpint(r) + _mpint(s))
    blob = (
        MAGIC
        + struct.pack(">I", VERSION)
        + _string(public_blob(key))
        + _string(namespace.encode())
        + _string(b"")
        + _string(HASH.encode())
        + _string(signature)
    )
    text = base64.b64encode(blob).decode()
    lines = [text[i : i + LINE] for i in range(0, len(text), LINE)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u32(self) -> int:
        return int(struct.unpack(">I", self.raw(4))[0])

    def string(self) -> bytes:
        return self.raw(self.u32())


def verify(armored: str, message: bytes, namespace: str, key: ec.EllipticCurvePublicKey) -> bool:
    """Whether ``armored`` is a valid signature of ``message`` by ``key`` in ``namespace``."""
    body = armored.strip()
    if not (body.startswith(BEGIN) and body.endswith(END)):
        return False
    try:
        blob = base64.b64decode("".join(body[len(BEGIN) : -len(END)].split()), validate=True)
        rd = _Reader(blob)
        fields = (rd.raw(6), rd.u32(), rd.string(), rd.string(), rd.string(), rd.string(), rd.string())
        if rd.pos != len(blob):
            return False
        magic, version, pub, ns, _reserved, hash_alg, signature = fields
        if (magic, version, pub, ns, hash_alg) != (
            MAGIC,
            VERSION,
            public_blob(key),
            namespace.encode(),
            b"sha512",
        ):
            return False
        sig = _Reader(signature)
        if sig.string() != KEY_TYPE:
            return False
        inner = _Reader(sig.string())
        r, s = int.from_bytes(inner.string(), "big"), int.from_bytes(inner.string(), "big")
        key.verify(encode_dss_signature(r, s), signed_data(message, namespace), ec.ECDSA(hashes.SHA256()))
    except (ValueError, binascii.Error, InvalidSignature):
        return False
    return True
