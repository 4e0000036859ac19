"""The Azure Key Vault signer: ES256 over a digest, the private key never leaves the vault.

``CryptographyClient.sign(ES256, digest)`` answers IEEE P1363 ``r‖s`` (64 bytes), split
into ``(r, s)`` here. The public key comes from ``KeyClient.get_key`` (the release
identity's role allows ``keys/read`` and ``keys/sign`` on this one key, terraform/keyvault.tf).
Every call has connection and read timeouts and at most ``RETRIES`` retries (Key Vault's
429 carries ``Retry-After``, which the SDK's retry policy obeys, capped by ``MAX_BACKOFF``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError
from cryptography.hazmat.primitives.asymmetric import ec

from ..errors import KmError

RETRIES = 3
MAX_BACKOFF = 10.0  # seconds between two tries, whatever Retry-After says
CONNECTION_TIMEOUT = 10
READ_TIMEOUT = 30


def parse_key_id(key_id: str) -> tuple[str, str, str]:
    """``https://<vault>/keys/<name>/<version>`` → (vault URL, name, version); a version is required."""
    parts = urlsplit(key_id)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme != "https" or not parts.netloc or len(segments) != 3 or segments[0] != "keys":
        raise KmError(
            f"Key Vault key id {key_id!r}: expected https://<vault>.vault.azure.net/keys/<name>/<version>"
        )
    return f"{parts.scheme}://{parts.netloc}", segments[1], segments[2]


class KeyVaultSigner:
    def __init__(
        self,
        key_id: str,
        credential: TokenCredential | None = None,
        *,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        self.vault_url, self.name, self.version = parse_key_id(key_id)
        self.key_id = key_id
        self._credential = credential
        self._options: dict[str, Any] = {
            "retry_total": RETRIES,
            "retry_backoff_max": MAX_BACKOFF,
            "connection_timeout": CONNECTION_TIMEOUT,
            "read_timeout": READ_TIMEOUT,
            **(client_options or {}),
        }
        self._public: ec.EllipticCurvePublicKey | None = None
        self._crypto: Any = None

    @property
    def label(self) -> str:
        return f"Key Vault key {self.name} ({self.vault_url})"

    @property
    def development(self) -> bool:
        return False

    def _cred(self) -> TokenCredential:
        if self._credential is None:
            from azure.identity import DefaultAzureCredential

            self._credential = DefaultAzureCredential()
        return self._credential

    def public_key(self) -> ec.EllipticCurvePublicKey:
        if self._public is None:
            from azure.keyvault.keys import KeyClient

            client = KeyClient(self.vault_url, self._cred(), **self._options)
            key = self._call("read", lambda: client.get_key(self.name, self.version)).key
            if key.kty not in ("EC", "EC-HSM") or key.crv != "P-256" or not key.x or not key.y:
                raise KmError(f"{self.label}: not an ECDSA P-256 key (kty {key.kty}, crv {key.crv})")
            numbers = ec.EllipticCurvePublicNumbers(
                int.from_bytes(key.x, "big"), int.from_bytes(key.y, "big"), ec.SECP256R1()
            )
            self._public = numbers.public_key()
        return self._public

    def sign_digest(self, digest: bytes) -> tuple[int, int]:
        from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm

        if self._crypto is None:
            self._crypto = CryptographyClient(self.key_id, self._cred(), **self._options)
        result = self._call("sign", lambda: self._crypto.sign(SignatureAlgorithm.es256, digest))
        sig = bytes(result.signature)
        if len(sig) != 64:
            raise KmError(f"{self.label}: sign answered {len(sig)} bytes, expected a 64-byte P-256 r‖s")
        return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")

    def _call(self, what: str, fn: Any) -> Any:
        try:
            return fn()
        except ClientAuthenticationError as exc:
            if exc.status_code is None:
                raise KmError(
                    f"{self.label}: no Azure credentials to {what} with (az login, a managed identity, "
                    "or the workflow's OIDC sign-in)"
                ) from None
            raise KmError(self._failure(what, exc)) from None
        except HttpResponseError as exc:
            raise KmError(self._failure(what, exc)) from None
        except AzureError as exc:
            raise KmError(f"{self.label}: {what} failed: {_first_line(exc)}") from None

    def _failure(self, what: str, exc: HttpResponseError) -> str:
        code = getattr(getattr(exc, "error", None), "code", None)
        status = f"HTTP {exc.status_code}" + (f" {code}" if code else "")
        hint = ""
        if exc.status_code == 403:
            hint = " (the identity needs keys/read and keys/sign on this key: terraform/keyvault.tf)"
        elif exc.status_code == 429:
            hint = f" (throttled; gave up after {RETRIES} retries: run the release again)"
        return f"{self.label}: {what} refused ({status}){hint}"


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
