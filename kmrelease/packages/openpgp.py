"""The OpenPGP key that signs the APT index (apt verifies only OpenPGP), used through gpg.

gpg runs in a temporary GNUPGHOME that holds only the imported key and is removed
(with its agent) afterwards. The key comes from the environment in production
(``KM_APT_SIGNING_KEY``: an armored secret key, or ``KM_APT_SIGNING_KEY_FILE``: a path;
``KM_APT_SIGNING_PASSPHRASE`` when it has one); a local release without one uses a
development key generated once under the project cache and says so. A production
destination refuses the development key. Secrets never reach output: gpg's messages
are reduced to their last line, which names no secret.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..config import find_config
from ..errors import KmError
from ..ui import Reporter

KEY_ENV = "KM_APT_SIGNING_KEY"
KEY_FILE_ENV = "KM_APT_SIGNING_KEY_FILE"
PASSPHRASE_ENV = "KM_APT_SIGNING_PASSPHRASE"
DEV_KEY = Path(".cache") / "keys" / "apt-dev-signing.asc"
DEV_UID = "Kilometers development archive key (local releases only) <release@localhost>"
TIMEOUT = 60


def _gpg_binary() -> str:
    gpg = shutil.which("gpg")
    if gpg is None:
        raise KmError("gpg is not installed: apt-get install gnupg (it signs the APT index)")
    return gpg


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no message)"


class Gpg:
    """gpg with its own GNUPGHOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.binary = _gpg_binary()
        self.passphrase_file: Path | None = None
        self.used = False  # whether gpg ran (and may have started an agent)

    def run(self, *args: str, data: bytes = b"", what: str) -> bytes:
        self.used = True
        cmd = [self.binary, "--homedir", str(self.home), "--batch", "--no-tty", "--quiet"]
        if self.passphrase_file is not None:
            cmd += ["--pinentry-mode", "loopback", "--passphrase-file", str(self.passphrase_file)]
        try:
            proc = subprocess.run(
                [*cmd, *args], input=data, capture_output=True, timeout=TIMEOUT, env=_gpg_env()
            )
        except subprocess.TimeoutExpired:
            raise KmError(f"gpg: {what} timed out after {TIMEOUT} s") from None
        if proc.returncode != 0:
            raise KmError(f"gpg: {what} failed: {_last_line(proc.stderr.decode('utf-8', 'replace'))}")
        return proc.stdout

    def close(self) -> None:
        gpgconf = shutil.which("gpgconf")
        if gpgconf and self.used:
            subprocess.run(
                [gpgconf, "--homedir", str(self.home), "--kill", "all"],
                capture_output=True,
                timeout=TIMEOUT,
                env=_gpg_env(),
            )


def _gpg_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("GNUPG", "GPG_"))} | {"LC_ALL": "C"}


@contextmanager
def gpg_home() -> Iterator[Gpg]:
    # a short path: gpg-agent's socket path must fit in sun_path
    with tempfile.TemporaryDirectory(prefix="kmgpg-", dir="/tmp" if os.path.isdir("/tmp") else None) as tmp:
        os.chmod(tmp, 0o700)
        gpg = Gpg(Path(tmp))
        try:
            yield gpg
        finally:
            gpg.close()


@dataclass(frozen=True)
class KeySource:
    armored: bytes  # the secret key
    passphrase: str
    development: bool
    where: str  # for messages: the environment variable or the file, never the key
    public_cache: Path | None = None  # a development key's fingerprint and public keyring, kept


def key_source() -> KeySource | None:
    """The configured signing key, or None when none is configured."""
    text = os.environ.get(KEY_ENV, "").strip()
    passphrase = os.environ.get(PASSPHRASE_ENV, "")
    if text:
        return KeySource(text.encode() + b"\n", passphrase, False, KEY_ENV)
    path = os.environ.get(KEY_FILE_ENV, "").strip()
    if path:
        try:
            return KeySource(Path(path).read_bytes(), passphrase, False, f"{KEY_FILE_ENV} ({path})")
        except OSError as exc:
            raise KmError(f"{KEY_FILE_ENV}: cannot read {path}: {exc.strerror}") from None
    return None


def development_key(reporter: Reporter, root: Path | None = None) -> KeySource:
    """The project's development key (``.cache/keys/apt-dev-signing.asc``), made on first use."""
    path = (root or find_config()[0]) / DEV_KEY
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with gpg_home() as gpg:
            gpg.run(
                "--passphrase",
                "",
                "--quick-gen-key",
                DEV_UID,
                "ed25519",
                "sign",
                "never",
                what="key generation",
            )
            secret = gpg.run("--armor", "--export-secret-keys", what="key export")
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secret)
        os.replace(path.with_suffix(".tmp"), path)
        reporter.info(f"made a development APT signing key in {path} (local releases only)")
    reporter.info(f"APT index signed with the development key {path} (set {KEY_ENV} for production)")
    return KeySource(path.read_bytes(), "", True, str(path), path.with_name(path.name + ".public.json"))


class Signer:
    """Signs with one imported key; exports its public keyring.

    A development key's fingerprint and public keyring are kept beside it
    (``<key>.public.json``, public data only, tied to the SHA-256 of the key file's bytes), so a
    release that signs nothing (the APT index unchanged) does not start gpg at all; the key is
    imported when something is to be signed, and must then have the kept fingerprint."""

    def __init__(self, gpg: Gpg, source: KeySource) -> None:
        self.gpg = gpg
        self.source = source
        self._imported = False
        self.fingerprint, self.keyring = "", b""
        kept = _kept_public(source)
        if kept is None:
            self._import()
            _keep_public(source, self.fingerprint, self.keyring)
        else:
            self.fingerprint, self.keyring = kept

    def _import(self) -> None:
        source, gpg = self.source, self.gpg
        if source.passphrase:
            pf = gpg.home / "passphrase"
            fd = os.open(pf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(source.passphrase)
            gpg.passphrase_file = pf
        gpg.run("--import", data=source.armored, what=f"import of the key from {source.where}")
        listing = gpg.run("--with-colons", "--list-secret-keys", what="key listing").decode()
        fprs = [ln.split(":")[9] for ln in listing.splitlines() if ln.startswith("fpr:")]
        if not fprs:
            raise KmError(f"{source.where} holds no secret key")
        if self.fingerprint and self.fingerprint != fprs[0]:
            raise KmError(f"{source.where}: the key is not the one {source.public_cache} names")
        self.fingerprint = fprs[0]
        self.keyring = gpg.run("--export", self.fingerprint, what="public key export")
        self._imported = True

    def _sign(self, data: bytes, *mode: str) -> bytes:
        if not self._imported:
            self._import()
        args = ("--local-user", self.fingerprint, "--digest-algo", "SHA512", *mode)
        return self.gpg.run(*args, data=data, what="signing")

    def clearsign(self, data: bytes) -> bytes:
        """``InRelease``: the Release file with an inline signature."""
        return self._sign(data, "--clearsign")

    def detach_sign(self, data: bytes) -> bytes:
        """``Release.gpg``: an armored detached signature."""
        return self._sign(data, "--armor", "--detach-sign")


def _kept_public(source: KeySource) -> tuple[str, bytes] | None:
    """The kept fingerprint and public keyring of a development key, when they are of these bytes."""
    if source.public_cache is None:
        return None
    try:
        doc = json.loads(source.public_cache.read_text(encoding="utf-8"))
        if doc["key_sha256"] != hashlib.sha256(source.armored).hexdigest():
            return None
        return str(doc["fingerprint"]), base64.b64decode(doc["keyring"], validate=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _keep_public(source: KeySource, fingerprint: str, keyring: bytes) -> None:
    if source.public_cache is None:
        return
    doc = {
        "key_sha256": hashlib.sha256(source.armored).hexdigest(),
        "fingerprint": fingerprint,
        "keyring": base64.b64encode(keyring).decode("ascii"),
    }
    tmp = source.public_cache.with_name(source.public_cache.name + ".tmp")
    try:
        tmp.write_text(json.dumps(doc) + "\n", encoding="utf-8")
        tmp.replace(source.public_cache)
    except OSError:
        pass  # kept next time, perhaps


@contextmanager
def signer(reporter: Reporter, *, production: bool, root: Path | None = None) -> Iterator[Signer]:
    """The APT signer for a destination; a production destination needs a configured key."""
    source = key_source()
    if source is None:
        if production:
            raise KmError(
                f"no APT signing key: set {KEY_ENV} (armored secret key) or {KEY_FILE_ENV}; "
                "a production destination is never signed with the development key"
            )
        source = development_key(reporter, root)
    with gpg_home() as gpg:
        yield Signer(gpg, source)
