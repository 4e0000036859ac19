"""Stage: Authenticode-sign the Windows binaries, before SBOMs and checksums (issue 10 point 6).

With ``osslsigncode`` (Debian's package) and a PEM certificate chain and key:
``[signing] authenticode_cert`` / ``authenticode_key`` in build/release.toml, or
``KM_AUTHENTICODE_CERT`` / ``KM_AUTHENTICODE_KEY``. The signing time is the commit date
(``-st``), so the same binary and key give the same signed bytes. Without a certificate the
stage says so and skips. A production key lives in Key Vault, which osslsigncode cannot
reach: with ``[signing] authenticode_keyvault`` (or ``KM_AUTHENTICODE_KEYVAULT``) the stage
signs with jsign through Key Vault's sign API instead (kmrelease/jsign.py).

Reproducibility holds for the unsigned bytes: :func:`unsigned_sha256` removes the signature
(``osslsigncode remove-signature``) and zeroes the PE checksum it sets, which is what
``--check-reproducible`` compares.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import KmError
from .jsign import KeyVaultCertificate, checked_timestamp_url, parse_certificate_url, sign_with_jsign
from .layout import BUILD_META
from .sign.settings import signing_table
from .ui import Reporter

TIMEOUT = 120


@dataclass(frozen=True)
class AuthenticodeKey:
    cert: Path
    key: Path
    timestamp_url: str = ""  # an RFC 3161 authority; "" signs without a timestamp


def _setting(table: dict[str, object], key: str) -> str:
    """``KM_<KEY>`` from the environment, else ``[signing] <key>``."""
    return os.environ.get(f"KM_{key.upper()}", "") or str(table.get(key, ""))


def authenticode_key(config_file: Path | None, root: Path) -> AuthenticodeKey | KeyVaultCertificate | None:
    """The configured signer: a Key Vault certificate (jsign), a PEM pair (osslsigncode), or none."""
    table = signing_table(config_file)
    cert, key = _setting(table, "authenticode_cert"), _setting(table, "authenticode_key")
    vault = _setting(table, "authenticode_keyvault")
    stamp = _setting(table, "authenticode_timestamp_url")
    if vault:
        if cert or key:
            raise KmError(
                "Authenticode: give a Key Vault certificate or a certificate and key file, not both"
            )
        return parse_certificate_url(vault, stamp)
    if not cert and not key:
        return None
    if not (cert and key):
        raise KmError(
            "Authenticode signing needs both a certificate and a key (authenticode_cert, authenticode_key)"
        )
    paths = [Path(p) if Path(p).is_absolute() else root / p for p in (cert, key)]
    for p in paths:
        if not p.is_file():
            raise KmError(f"Authenticode: {p} does not exist")
    return AuthenticodeKey(paths[0], paths[1], checked_timestamp_url(stamp))


def _tool() -> str:
    tool = shutil.which("osslsigncode")
    if tool is None:
        raise KmError("Authenticode signing needs osslsigncode (apt-get install osslsigncode)")
    return tool


def _run(args: list[str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([_tool(), *args], capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise KmError(f"osslsigncode {what} did not finish within {TIMEOUT}s") from None


def is_signed(path: Path) -> bool:
    """Whether the PE file carries a signature (its certificate table is not empty)."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    (pe,) = struct.unpack_from("<I", head, 0x3C)
    magic = struct.unpack_from("<H", head, pe + 24)[0]
    table = pe + 24 + (144 if magic == 0x20B else 128)  # data directory 4: the certificate table
    size = struct.unpack_from("<I", head, table + 4)[0]
    return bool(size)


def sign_exe(path: Path, key: AuthenticodeKey, epoch: int, name: str) -> None:
    """Sign ``path`` in place (SHA-256 digest, signing time ``epoch``)."""
    tmp = path.with_name(f".{path.name}.signed")
    args = ["sign", "-certs", str(key.cert), "-key", str(key.key), "-h", "sha256", "-n", name]
    if key.timestamp_url:
        args += ["-ts", key.timestamp_url]
    proc = _run([*args, "-st", str(epoch), "-in", str(path), "-out", str(tmp)], "sign")
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise KmError(f"{path.name}: Authenticode signing failed: {_sign_reason(proc.stderr, proc.stdout)}")
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)


# A line of OpenSSL's error queue, which osslsigncode prints after its own words.
_OPENSSL_QUEUE = re.compile(r"^[0-9A-F]{8,}:error:")


def _sign_reason(stderr: str, stdout: str) -> str:
    """osslsigncode's reason in one line: a timestamping failure named with its HTTP cause, else
    the last line it printed (OpenSSL's own error queue when that is all there is)."""
    lines = [ln.strip() for ln in (stderr or stdout).splitlines() if ln.strip()]
    words = [ln for ln in lines if not _OPENSSL_QUEUE.match(ln)]
    if any("timestamping failed" in ln for ln in words):
        cause = next((ln for ln in words if ln.startswith("HTTP failure:")), "")
        return f"RFC 3161 timestamping failed ({cause})" if cause else "RFC 3161 timestamping failed"
    return lines[-1] if lines else "osslsigncode failed"


def unsigned_sha256(path: Path) -> str:
    """SHA-256 of the binary without its Authenticode signature (and with the PE checksum zeroed)."""
    data = path.read_bytes()
    if is_signed(path):
        with tempfile.TemporaryDirectory(prefix="km-unsigned-") as tmp:
            out = Path(tmp) / path.name
            proc = _run(["remove-signature", "-in", str(path), "-out", str(out)], "remove-signature")
            if proc.returncode != 0:
                raise KmError(f"{path.name}: cannot remove its Authenticode signature")
            data = out.read_bytes()
    buf = bytearray(data)
    (pe,) = struct.unpack_from("<I", buf, 0x3C)
    struct.pack_into("<I", buf, pe + 24 + 64, 0)  # the optional header's CheckSum
    return hashlib.sha256(buf).hexdigest()


def authenticode_stage(
    dist: Path,
    exes: list[str],
    key: AuthenticodeKey | KeyVaultCertificate | None,
    epoch: int,
    reporter: Reporter,
    *,
    dry_run: bool,
    cache: Path | None = None,
    credential: object | None = None,
) -> list[str]:
    """Sign the unsigned Windows binaries of ``dist``; returns the names signed now."""
    if key is None:
        reporter.info(
            "Windows binaries not Authenticode-signed: no certificate configured ([signing] "
            "authenticode_keyvault, or authenticode_cert/authenticode_key, or KM_AUTHENTICODE_*)"
        )
        return []
    todo = [n for n in exes if not is_signed(dist / n)] if not dry_run else exes
    with_what = key.label if isinstance(key, KeyVaultCertificate) else key.cert.name
    reporter.step(f"Authenticode-sign {len(todo)} Windows binaries with {with_what}")
    if dry_run or not todo:
        return []
    if isinstance(key, KeyVaultCertificate):
        sign_with_jsign([dist / n for n in todo], key, cache or dist / BUILD_META, "km", credential)
        for name in todo:
            os.chmod(dist / name, 0o755)
            _remember_signed(dist, name)
        return todo
    for name in todo:
        sign_exe(dist / name, key, epoch, "km")
        _remember_signed(dist, name)
    return todo


def _remember_signed(dist: Path, name: str) -> None:
    """Record the signed digest in the build stamp, so an unchanged build is not redone."""
    stamp = dist / BUILD_META / f"{name}.json"
    if not stamp.is_file():
        return
    try:
        doc = json.loads(stamp.read_text(encoding="utf-8"))
    except ValueError:
        return
    doc["signed_sha256"] = hashlib.sha256((dist / name).read_bytes()).hexdigest()
    stamp.write_text(json.dumps(doc) + "\n", encoding="utf-8")
