"""``inv sign.macos``: Developer ID signing and notarization of the darwin binaries (issue 10 point 7).

Runs on a macOS machine (release.yml's ``sign-macos`` job, on a macOS runner, only when the
Apple credentials are configured), on the prebuilt binaries, before the publish job computes
any checksum. For each ``<binary>-darwin-*`` file of the directory:

1. ``codesign --force --timestamp --options runtime --sign <identity>`` (hardened runtime,
   secure timestamp: what notarization requires), then ``codesign --verify --strict``;
2. ``ditto -c -k --keepParent`` into a zip, ``xcrun notarytool submit --wait`` with an App
   Store Connect API key; anything but ``Accepted`` fails with notarytool's own status line.
   A bare Mach-O cannot be stapled: Gatekeeper asks Apple online the first time it runs.

The certificate (a base64 ``.p12``) goes into a throwaway keychain made for this run and
deleted after it; the API key (base64 ``.p8``) into a private temporary file. Credentials come
from the environment only and never appear in output: ``KM_APPLE_IDENTITY`` (the signing
identity, "Developer ID Application: Name (TEAMID)"), ``KM_APPLE_CERT_P12`` and
``KM_APPLE_CERT_PASSWORD``, ``KM_APPLE_API_KEY`` (base64 .p8), ``KM_APPLE_API_KEY_ID``,
``KM_APPLE_API_ISSUER``. The engine's build check then verifies every page hash of the new
signature (kmrelease/codesign.py) like that of the linker's ad-hoc one.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import KmError
from .ui import Reporter

SIGN_TIMEOUT = 300  # codesign with a secure timestamp asks Apple's timestamp server
NOTARY_TIMEOUT = 1800  # notarytool --wait: usually minutes
TOOLS = ("codesign", "ditto", "xcrun", "security")
ENV = {
    "identity": "KM_APPLE_IDENTITY",
    "p12": "KM_APPLE_CERT_P12",
    "p12_password": "KM_APPLE_CERT_PASSWORD",
    "api_key": "KM_APPLE_API_KEY",
    "api_key_id": "KM_APPLE_API_KEY_ID",
    "api_issuer": "KM_APPLE_API_ISSUER",
}


@dataclass(frozen=True)
class AppleCredentials:
    identity: str
    p12: bytes
    p12_password: str
    api_key: bytes
    api_key_id: str
    api_issuer: str

    def __repr__(self) -> str:  # never the secrets, even in a traceback
        return f"AppleCredentials(identity={self.identity!r}, api_key_id={self.api_key_id!r})"


def credentials(environ: Mapping[str, str]) -> AppleCredentials:
    """The credentials from the environment; one line naming every missing or malformed one."""
    missing = [name for name in ENV.values() if not environ.get(name, "").strip()]
    if missing:
        raise KmError(f"Developer ID signing needs {', '.join(missing)} in the environment")
    values = {field: environ[name].strip() for field, name in ENV.items()}
    blobs = {}
    for field in ("p12", "api_key"):
        try:
            blobs[field] = base64.b64decode(values[field], validate=True)
        except (binascii.Error, ValueError):
            raise KmError(f"{ENV[field]} is not base64 (base64 of the file, one line)") from None
    return AppleCredentials(
        values["identity"], blobs["p12"], values["p12_password"], blobs["api_key"],
        values["api_key_id"], values["api_issuer"],
    )  # fmt: skip


def darwin_binaries(folder: Path, binary: str) -> list[Path]:
    """The darwin binaries of ``folder`` (``<binary>-darwin-<arch>``), or one line saying there are none."""
    if not folder.is_dir():
        raise KmError(f"{folder} is not a directory")
    found = sorted(p for p in folder.glob(f"{binary}-darwin-*") if p.is_file() and "." not in p.name)
    if not found:
        raise KmError(f"no {binary}-darwin-* binaries in {folder}")
    return found


def _run(argv: list[str], what: str, timeout: int) -> str:
    """Run a tool; its last output line in the error when it fails (tools never print secrets)."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise KmError(f"{what} did not finish within {timeout} s") from None
    out = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        last = out.splitlines()[-1] if out else f"exit {proc.returncode}"
        raise KmError(f"{what} failed: {last[:300]}")
    return out


@contextmanager
def _keychain(creds: AppleCredentials, work: Path) -> Iterator[Path]:
    """A keychain holding only the signing certificate, searched first, deleted afterwards."""
    keychain, password = work / "km-signing.keychain-db", secrets.token_hex(16)
    p12 = work / "cert.p12"
    p12.write_bytes(creds.p12)
    _run(["security", "create-keychain", "-p", password, str(keychain)], "security create-keychain", 60)
    try:
        _run(["security", "unlock-keychain", "-p", password, str(keychain)], "security unlock-keychain", 60)
        _run(["security", "import", str(p12), "-k", str(keychain), "-P", creds.p12_password,
              "-T", "/usr/bin/codesign"], "security import (the .p12 or its password)", 60)  # fmt: skip
        _run(["security", "set-key-partition-list", "-S", "apple-tool:,apple:", "-s", "-k", password,
              str(keychain)], "security set-key-partition-list", 60)  # fmt: skip
        _run(["security", "list-keychains", "-d", "user", "-s", str(keychain)], "security list-keychains", 60)
        yield keychain
    finally:
        subprocess.run(["security", "delete-keychain", str(keychain)], capture_output=True, timeout=60)


def sign_and_notarize(path: Path, creds: AppleCredentials, keychain: Path, api_key: Path) -> None:
    name = path.name
    _run(["codesign", "--force", "--timestamp", "--options", "runtime", "--keychain", str(keychain),
          "--sign", creds.identity, str(path)], f"codesign of {name}", SIGN_TIMEOUT)  # fmt: skip
    _run(["codesign", "--verify", "--strict", "--verbose=2", str(path)], f"codesign --verify of {name}", 60)
    archive = api_key.parent / f"{name}.zip"
    _run(["ditto", "-c", "-k", "--keepParent", str(path), str(archive)], f"ditto of {name}", 120)
    out = _run(["xcrun", "notarytool", "submit", str(archive), "--key", str(api_key), "--key-id",
                creds.api_key_id, "--issuer", creds.api_issuer, "--wait", "--timeout", "25m"],
               f"notarization of {name}", NOTARY_TIMEOUT)  # fmt: skip
    status = [line.strip() for line in out.splitlines() if line.strip().startswith("status:")]
    if not status or status[-1] != "status: Accepted":
        raise KmError(f"notarization of {name} was not accepted ({status[-1] if status else 'no status'})")


def sign_macos(
    folder: Path, binary: str, reporter: Reporter, *, dry_run: bool, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Developer ID-sign and notarize the darwin binaries of ``folder``; returns their names."""
    paths = darwin_binaries(folder, binary)
    creds = credentials(os.environ if environ is None else environ)
    names = [p.name for p in paths]
    reporter.step(f"Developer ID-sign and notarize {', '.join(names)} as {creds.identity}")
    if dry_run:
        reporter.info("dry run: nothing signed, nothing sent to Apple")
        return names
    absent = [t for t in TOOLS if shutil.which(t) is None]
    if absent:
        raise KmError(f"Developer ID signing runs on macOS: {', '.join(absent)} not found")
    with tempfile.TemporaryDirectory(prefix="km-macsign-") as tmp:
        work = Path(tmp)
        api_key = work / f"AuthKey_{creds.api_key_id}.p8"
        api_key.write_bytes(creds.api_key)
        api_key.chmod(0o600)
        with _keychain(creds, work) as keychain:
            for path in paths:
                sign_and_notarize(path, creds, keychain, api_key)
                reporter.info(f"{path.name}: signed, notarized (Accepted)")
    return names
