"""Authenticode signing with a certificate whose key never leaves Azure Key Vault (jsign).

osslsigncode needs the private key as a file; a production code-signing key lives in Key
Vault (an HSM-backed, non-exportable key), so with ``[signing] authenticode_keyvault =
"https://<vault>.vault.azure.net/certificates/<name>"`` (or ``KM_AUTHENTICODE_KEYVAULT``) the
Authenticode stage runs jsign (``--storetype AZUREKEYVAULT``): jsign reads the certificate,
hashes each ``.exe`` locally and asks Key Vault's ``sign`` API for the RSA signature. jsign is
one jar from Maven Central, fetched into the cache directory once and checked against the
SHA-256 pinned here; it needs a Java runtime (GitHub's Ubuntu runners have one). The access
token comes from the same Azure credential as publishing (``DefaultAzureCredential``: OIDC in
the release workflow) and reaches jsign through its environment (``--storepass env:…``),
never a command line or an output. ``authenticode_timestamp_url`` adds an RFC 3161 timestamp.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from .errors import KmError
from .httpbounds import Limits, excerpt, open_bounded, read_capped

JSIGN_VERSION = "7.1"
JSIGN_SHA256 = "cfb48b07fdd2ee199bfc9e71d8dccdde67a799c4793602e446c7a101be62b3c4"
JSIGN_URL = f"https://repo1.maven.org/maven2/net/jsign/jsign/{JSIGN_VERSION}/jsign-{JSIGN_VERSION}.jar"
JSIGN_MAX_BYTES = 16 << 20
VAULT_SCOPE = "https://vault.azure.net/.default"
TOKEN_ENV = "KM_JSIGN_TOKEN"
TIMEOUT = 600  # jsign: a JVM start, then one Key Vault round trip (and a timestamp) per file


@dataclass(frozen=True)
class KeyVaultCertificate:
    vault_url: str  # https://<vault>.vault.azure.net
    name: str
    timestamp_url: str = ""

    @property
    def label(self) -> str:
        return f"Key Vault certificate {self.name} ({self.vault_url})"


def parse_certificate_url(url: str, timestamp_url: str = "") -> KeyVaultCertificate:
    """``https://<vault>/certificates/<name>`` (a version, if given, is ignored: jsign signs with
    the certificate's current version)."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if (
        parts.scheme != "https"
        or not parts.hostname
        or len(segments) not in (2, 3)
        or segments[0] != "certificates"
    ):
        raise KmError(
            f"authenticode_keyvault must be https://<vault>.vault.azure.net/certificates/<name>, "
            f"not {excerpt(url, 100)}"
        )
    return KeyVaultCertificate(f"https://{parts.netloc}", segments[1], checked_timestamp_url(timestamp_url))


def checked_timestamp_url(url: str) -> str:
    """``authenticode_timestamp_url`` as given ("" for none), refused unless http(s) with a host and
    without credentials (the signers print the URL when the authority fails)."""
    parts = urlsplit(url)
    if url and "@" in parts.netloc:
        raise KmError("authenticode_timestamp_url must not carry credentials (user:password@)")
    if url and (parts.scheme not in ("http", "https") or not parts.hostname):
        raise KmError(f"authenticode_timestamp_url must be an http(s) URL, not {excerpt(url, 100)}")
    return url


def jsign_jar(cache: Path, url: str = JSIGN_URL, limits: Limits | None = None) -> Path:
    """The pinned jsign jar in ``cache`` (downloaded once; any other bytes are refused)."""
    jar = cache / f"jsign-{JSIGN_VERSION}.jar"
    if jar.is_file() and hashlib.sha256(jar.read_bytes()).hexdigest() == JSIGN_SHA256:
        return jar
    cache.mkdir(parents=True, exist_ok=True)
    limits = limits or Limits(total=120.0)
    with requests.Session() as session:
        resp = open_bounded(session, url, limits)
        if resp.status_code != 200:
            resp.close()
            raise KmError(f"cannot download jsign {JSIGN_VERSION} from {url}: HTTP {resp.status_code}")
        data = b"".join(read_capped(resp, JSIGN_MAX_BYTES, limits))
    got = hashlib.sha256(data).hexdigest()
    if got != JSIGN_SHA256:
        raise KmError(f"jsign {JSIGN_VERSION} from {url} has sha256 {got}, not the pinned {JSIGN_SHA256}")
    with tempfile.NamedTemporaryFile(dir=cache, delete=False, prefix=".jsign-") as tmp:
        tmp.write(data)
    os.replace(tmp.name, jar)
    return jar


def _token(cert: KeyVaultCertificate, credential: Any | None) -> str:
    from azure.core.exceptions import ClientAuthenticationError

    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    try:
        return str(credential.get_token(VAULT_SCOPE).token)
    except ClientAuthenticationError:
        raise KmError(
            f"{cert.label}: no Azure credentials to sign with (az login, a managed identity, "
            "or the workflow's OIDC sign-in)"
        ) from None


def jsign_command(jar: Path, cert: KeyVaultCertificate, paths: list[Path], name: str) -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise KmError(
            "Authenticode signing with Key Vault runs jsign, which needs Java "
            "(apt-get install default-jre-headless)"
        )
    cmd = [java, "-jar", str(jar), "--storetype", "AZUREKEYVAULT", "--keystore", cert.vault_url]
    cmd += ["--storepass", f"env:{TOKEN_ENV}", "--alias", cert.name, "--alg", "SHA-256", "--name", name]
    if cert.timestamp_url:
        cmd += ["--tsaurl", cert.timestamp_url, "--tsmode", "RFC3161"]
    return cmd + [str(p) for p in paths]


def sign_with_jsign(
    paths: list[Path], cert: KeyVaultCertificate, cache: Path, name: str, credential: Any | None = None
) -> None:
    """Sign ``paths`` in place through Key Vault; one line (jsign's own reason) when it fails."""
    cmd = jsign_command(jsign_jar(cache), cert, paths, name)
    token = _token(cert, credential)
    env = {**os.environ, TOKEN_ENV: token}
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise KmError(f"{cert.label}: jsign did not finish within {TIMEOUT} s") from None
    if proc.returncode != 0:
        reason = jsign_reason(proc.stderr + proc.stdout, proc.returncode)
        for p in paths:
            reason = reason.replace(str(p), p.name)
        shown = excerpt(reason.replace(token, "***"), 240, quote=False)
        raise KmError(f"{cert.label}: Authenticode signing failed: {shown}")


# A Java exception's line in a stack trace: "[Suppressed: |Caused by: ]<class>: <message>".
_CAUSE = re.compile(r"^\s*(?:Suppressed: |Caused by: )?[\w.$]+(?:Exception|Error): (.+)$")


def jsign_reason(output: str, code: int) -> str:
    """jsign's own line (``jsign: Couldn't sign x.exe``) and, from the stack trace after it, the
    innermost cause (``Unable to complete the timestamping due to HTTP error: 503 ...``)."""
    lines = output.splitlines()
    own = [i for i, ln in enumerate(lines) if ln.startswith("jsign:")]
    if not own:
        return f"exit {code}"
    reason = lines[own[-1]].removeprefix("jsign:").strip()
    causes = [m.group(1).strip() for ln in lines[own[-1] + 1 :] if (m := _CAUSE.match(ln))]
    return f"{reason}: {causes[-1]}" if causes and causes[-1] not in reason else reason
