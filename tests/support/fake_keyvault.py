"""A local Azure Key Vault speaking the keys REST protocol the SDK uses, over HTTPS.

- every request without a bearer token gets Key Vault's ``401`` challenge
  (``WWW-Authenticate: Bearer authorization=…, resource=…``), as the SDK expects;
- ``GET /keys/<name>/<version>`` answers the JSON web key (EC P-256, public part only);
- ``POST /keys/<name>/<version>/sign`` with ``{"alg": "ES256", "value": <base64url digest>}``
  answers ``{"kid": …, "value": <base64url r‖s>}`` (IEEE P1363, as Key Vault does).

``mode``: ``succeed``; ``forbidden`` (403 on sign); ``throttle`` (429 with ``Retry-After``
``throttled`` times, then success; ``throttled=-1`` forever). The key is a real P-256 key
made per server; the tests check the signatures it makes with ssh-keygen and openssl.
The SDK refuses bearer tokens over plain HTTP, so the server has its own self-signed
certificate for 127.0.0.1 (``ca_file`` is passed as ``connection_verify``).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from cryptography.x509.oid import NameOID

KEY_NAME = "km-release"
KEY_VERSION = "0123456789abcdef0123456789abcdef"
CHALLENGE = (
    'Bearer authorization="https://login.microsoftonline.com/tenant-0", resource="https://vault.azure.net"'
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Token:
    """A credential for the fake vault (any bearer token is accepted); records the scopes asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken("kv-secret-token", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessTokenInfo

        self.scopes.append(scopes)
        return AccessTokenInfo("kv-secret-token", int(time.time()) + 3600)


@dataclass
class FakeKeyVault:
    mode: str = "succeed"
    throttled: int = 1
    retry_after: str = "0"
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    url: str = ""
    ca_file: str = ""
    signs: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, authorization

    @property
    def key_id(self) -> str:
        return f"{self.url}/keys/{KEY_NAME}/{KEY_VERSION}"

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict[str, Any]:
        n = self.key.public_key().public_numbers()
        return {
            "kid": self.key_id,
            "kty": "EC",
            "crv": "P-256",
            "key_ops": ["sign", "verify"],
            "x": b64url(n.x.to_bytes(32, "big")),
            "y": b64url(n.y.to_bytes(32, "big")),
        }

    def sign(self, digest: bytes) -> bytes:
        r, s = decode_dss_signature(self.key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def handler(self) -> type[BaseHTTPRequestHandler]:
        kv = self
        key_path = f"/keys/{KEY_NAME}/{KEY_VERSION}"

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _json(self, status: int, doc: object, headers: dict[str, str] | None = None) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _error(
                self, status: int, code: str, message: str, headers: dict[str, str] | None = None
            ) -> None:
                self._json(status, {"error": {"code": code, "message": message}}, headers)

            def _authorized(self) -> bool:
                auth = self.headers.get("Authorization", "")
                path = self.path.partition("?")[0]
                kv.requests.append((self.command, path, auth))
                if auth.startswith("Bearer "):
                    return True
                self._error(
                    401,
                    "Unauthorized",
                    "AKV10000: Request is missing a Bearer or PoP token.",
                    {"WWW-Authenticate": CHALLENGE},
                )
                return False

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                if self.path.partition("?")[0] != key_path:
                    self._error(404, "KeyNotFound", f"A key with (name/id) {self.path} was not found.")
                    return
                self._json(200, {"key": kv.jwk(), "attributes": {"enabled": True}})

            def do_POST(self) -> None:
                raw = self._body()
                if not self._authorized():
                    return
                if self.path.partition("?")[0] != key_path + "/sign":
                    self._error(404, "KeyNotFound", f"no route {self.path}")
                    return
                if kv.mode == "forbidden":
                    self._error(
                        403,
                        "Forbidden",
                        "Caller is not authorized to perform action on resource. "
                        "Action: 'Microsoft.KeyVault/vaults/keys/sign/action'",
                    )
                    return
                if kv.mode == "throttle" and (kv.throttled < 0 or len(kv.signs) < kv.throttled):
                    kv.signs.append({"throttled": True})
                    self._error(
                        429,
                        "Throttled",
                        "Request was not processed because too many requests were received.",
                        {"Retry-After": kv.retry_after},
                    )
                    return
                doc = json.loads(raw)
                if doc.get("alg") != "ES256":
                    self._error(400, "BadParameter", f"alg {doc.get('alg')!r}")
                    return
                digest = unb64url(doc["value"])
                kv.signs.append({"alg": doc["alg"], "digest": digest})
                self._json(200, {"kid": kv.key_id, "value": b64url(kv.sign(digest))})

        return Handler


def _certificate(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-keyvault")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "kv.crt", tmp / "kv.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


@contextmanager
def _https(vault: FakeKeyVault | FakeCertificateVault) -> Iterator[None]:
    """Serve ``vault`` over HTTPS on a loopback port with a certificate of its own (``ca_file``)."""
    with tempfile.TemporaryDirectory(prefix="fake-kv-") as tmp:
        cert_file, key_file = _certificate(Path(tmp))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        server = ThreadingHTTPServer(("127.0.0.1", 0), vault.handler())
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        vault.url = f"https://127.0.0.1:{server.server_address[1]}"
        vault.ca_file = str(cert_file)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield
        finally:
            server.shutdown()
            server.server_close()


@contextmanager
def fake_keyvault(mode: str = "succeed", **kwargs: Any) -> Iterator[FakeKeyVault]:
    kv = FakeKeyVault(mode=mode, **kwargs)
    with _https(kv):
        yield kv


# --- certificates: Authenticode through jsign (kmrelease/jsign.py) ----------------------------------


@dataclass
class FakeCertificateVault:
    """Key Vault's certificates and RSA sign API, as jsign's AZUREKEYVAULT store uses them:
    ``GET /certificates/<name>`` (the certificate bundle: ``cer``, ``kid``, ``policy.key_props``),
    then ``POST /keys/<name>/<version>/sign`` with ``{"alg": "RS256", "value": <base64 digest>}``.
    ``mode``: ``succeed``, or ``forbidden`` (403 on sign)."""

    cert_der: bytes
    key: Any  # an RSA private key: the certificate's, held by the vault only
    name: str = "km-code-signing"
    mode: str = "succeed"
    url: str = ""
    ca_file: str = ""
    requests: list[tuple[str, str, str]] = field(default_factory=list)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        from cryptography.hazmat.primitives.asymmetric import padding

        vault = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _json(self, status: int, doc: object) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _path(self) -> str | None:
                path = self.path.partition("?")[0]
                vault.requests.append((self.command, path, self.headers.get("Authorization", "")))
                if not self.headers.get("Authorization", "").startswith("Bearer "):
                    self._json(401, {"error": {"code": "Unauthorized", "message": "no token"}})
                    return None
                return path

            def do_GET(self) -> None:
                path = self._path()
                if path is None:
                    return
                if path != f"/certificates/{vault.name}":
                    self._json(404, {"error": {"code": "CertificateNotFound", "message": path}})
                    return
                self._json(200, {
                    "id": f"{vault.url}/certificates/{vault.name}/{KEY_VERSION}",
                    "kid": f"{vault.url}/keys/{vault.name}/{KEY_VERSION}",
                    "cer": base64.b64encode(vault.cert_der).decode(),
                    "policy": {"key_props": {"kty": "RSA", "key_size": 2048, "exportable": False}},
                })  # fmt: skip

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self._path()
                if path is None:
                    return
                if path != f"/keys/{vault.name}/{KEY_VERSION}/sign":
                    self._json(404, {"error": {"code": "KeyNotFound", "message": path}})
                    return
                if vault.mode == "forbidden":
                    refusal = "Caller is not authorized to perform action on resource: keys/sign/action"
                    self._json(403, {"error": {"code": "Forbidden", "message": refusal}})
                    return
                doc = json.loads(raw)
                digest = unb64url(doc["value"].replace("+", "-").replace("/", "_").rstrip("="))
                sig = vault.key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
                self._json(200, {"kid": f"{vault.url}/keys/{vault.name}/{KEY_VERSION}", "value": b64url(sig)})

        return Handler


@contextmanager
def fake_certificate_vault(
    cert_der: bytes, key: Any, mode: str = "succeed"
) -> Iterator[FakeCertificateVault]:
    vault = FakeCertificateVault(cert_der, key, mode=mode)
    with _https(vault):
        yield vault
