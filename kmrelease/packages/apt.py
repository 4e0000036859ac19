"""The APT repository under ``/apt/`` (SPEC §14), written through the Destination protocol.

Layout (origin keys; the public path is the key): ``apt/pool/main/<p>/<package>/*.deb``
(immutable), ``apt/dists/<suite>/{InRelease,Release,Release.gpg}`` and
``apt/dists/<suite>/main/binary-<arch>/{Packages,Packages.gz,by-hash/SHA256/<hex>}``,
``apt/kilometers-archive-keyring.gpg``. Releases go to the suite ``stable`` and
``unstable``, pre-releases to ``unstable`` only; each index holds every version ever
published there (it is its own database: the next release reads it back and adds to
it), so ``apt-get install kilometers-cli=1.2.2`` rolls back.

Order, as for the rest of a release: the pool files first (copied from the already
read-back ``releases/<v>/`` files, server side on Azure) and read back, then the
keyring, then per suite the by-hash files, ``Packages(.gz)``, ``Release``,
``Release.gpg`` and last ``InRelease``: the signed index is this repository's commit
point. A suite whose packages are unchanged is not rewritten (no new date, no new
signature), so a re-run changes nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from debian.deb822 import Deb822, Packages, Release
from debian.debfile import DebError, DebFile
from debian.debian_support import Version as DebVersion

from ..destinations import Destination
from ..errors import KmError
from ..hashing import digest_bytes
from ..ui import Reporter
from ..urlspace import Kind, headers_of, key_of
from ..version import Version
from .openpgp import Signer
from .settings import PackageSettings

COMPONENT = "main"
ARCHES = ("amd64", "arm64")
STABLE, UNSTABLE = "stable", "unstable"
FILE_FIELDS = ("Filename", "Size", "MD5sum", "SHA256")


def suites_for(version: Version) -> tuple[str, ...]:
    return (UNSTABLE,) if version.is_prerelease else (STABLE, UNSTABLE)


def pool_path(settings: PackageSettings, filename: str) -> str:
    """``pool/main/k/kilometers-cli/<file>``: relative to the repository root, as in ``Filename:``."""
    p = settings.package
    prefix = p[:4] if p.startswith("lib") else p[0]
    return f"pool/{COMPONENT}/{prefix}/{p}/{filename}"


def _apt_key(rel: str) -> str:
    kind = Kind.APT_POOL if rel.startswith("pool/") else Kind.APT_DISTS
    return key_of(kind, path=rel.split("/", 1)[1])


def stanza(data: bytes, filename: str) -> Deb822:
    """The ``Packages`` paragraph of a .deb: its control fields plus where it is and its hashes."""
    try:
        control = DebFile(fileobj=io.BytesIO(data)).debcontrol()
    except (DebError, OSError, KeyError, EOFError) as exc:
        raise KmError(f"{filename} is not a readable .deb: {exc}") from None
    d = digest_bytes(data)
    files = {
        "Filename": filename,
        "Size": str(d.size),
        "MD5sum": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        "SHA256": d.sha256,
    }
    out = Deb822()
    for field, value in control.items():
        if field == "Description":
            out.update(files)
        out[field] = value
    if "Filename" not in out:
        out.update(files)
    return out


def _ident(p: Deb822) -> tuple[str, str, str]:
    return (p["Package"], p["Version"], p["Architecture"])


def parse_packages(text: str) -> list[Deb822]:
    return [Deb822(p) for p in Packages.iter_paragraphs(text.splitlines(), use_apt_pkg=False) if p]


def render_packages(paragraphs: Iterable[Deb822]) -> bytes:
    ordered = sorted(paragraphs, key=lambda p: (p["Package"], DebVersion(p["Version"]), p["Architecture"]))
    return "\n".join(p.dump() for p in ordered).encode()


def gzipped(data: bytes) -> bytes:
    """gzip without a name or a time: the same bytes for the same index."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def release_file(s: PackageSettings, suite: str, files: dict[str, bytes], now: datetime) -> bytes:
    rel = Release()
    rel["Origin"] = s.apt_origin
    rel["Label"] = s.apt_label
    rel["Suite"] = suite
    rel["Codename"] = suite
    rel["Date"] = now.strftime("%a, %d %b %Y %H:%M:%S UTC")
    rel["Architectures"] = " ".join(ARCHES)
    rel["Components"] = COMPONENT
    rel["Description"] = f"{s.summary} ({suite})"
    rel["Acquire-By-Hash"] = "yes"
    rel["MD5Sum"] = [  # type: ignore[assignment]  # multivalued: a list of dicts
        {"md5sum": hashlib.md5(data, usedforsecurity=False).hexdigest(), "size": str(len(data)), "name": name}
        for name, data in sorted(files.items())
    ]
    rel["SHA256"] = [  # type: ignore[assignment]
        {"sha256": hashlib.sha256(data).hexdigest(), "size": str(len(data)), "name": name}
        for name, data in sorted(files.items())
    ]
    return rel.dump().encode()


@dataclass
class AptOutcome:
    pool_written: list[str]
    suites_written: list[str]
    keyring_written: bool

    @property
    def changed(self) -> bool:
        return bool(self.pool_written or self.suites_written or self.keyring_written)


@dataclass(frozen=True)
class DebInput:
    name: str  # kilometers-cli_1.2.3_amd64.deb
    source_key: str  # where it already is at the destination: releases/<v>/<name>
    data: bytes


class AptRepository:
    def __init__(self, dest: Destination, settings: PackageSettings, reporter: Reporter) -> None:
        self.dest = dest
        self.s = settings
        self.reporter = reporter

    def publish(
        self, version: Version, debs: list[DebInput], signer: Signer, *, force: bool = False
    ) -> AptOutcome:
        """Pool, keyring, then every suite of ``version``; what changed."""
        self.reporter.step(
            f"APT repository: {len(debs)} package(s) of {version} → {', '.join(suites_for(version))}"
        )
        pool = self._pool(debs, force=force)
        keyring = self._keyring(signer)
        stanzas = [stanza(d.data, pool_path(self.s, d.name)) for d in debs]
        suites = [
            s for s in suites_for(version) if self._suite(s, stanzas, signer, force=force, resign=keyring)
        ]
        out = AptOutcome(pool, suites, keyring)
        index = f"rewritten for {', '.join(suites)}" if suites else "unchanged"
        self.reporter.info(f"APT: {len(pool)} pool file(s) written, index {index}")
        return out

    def _pool(self, debs: list[DebInput], *, force: bool) -> list[str]:
        written = []
        for d in debs:
            key = _apt_key(pool_path(self.s, d.name))
            want = digest_bytes(d.data)
            info = self.dest.stat(key)
            if info is not None and info.size == want.size and info.md5 in (None, want.md5):
                continue
            if info is not None and not force:
                raise KmError(f"{key}: already in the pool with other content (pool files are immutable)")
            self.dest.copy(d.source_key, key, headers_of(Kind.APT_POOL, d.name))
            got = self.dest.stat(key)
            if got is None or got.size != want.size or got.md5 not in (None, want.md5):
                raise KmError(
                    f"{key}: read back does not match {d.source_key}; the APT index was not changed"
                )
            written.append(d.name)
        return written

    def _keyring(self, signer: Signer) -> bool:
        key = key_of(Kind.APT_KEYRING)
        if self.dest.read_bytes(key) == signer.keyring:
            return False
        self.dest.put_bytes(key, signer.keyring, headers_of(Kind.APT_KEYRING))
        self.reporter.info(f"APT keyring {key} (key {signer.fingerprint[-16:]})")
        return True

    def _read(self, rel: str) -> bytes | None:
        return self.dest.read_bytes(_apt_key(rel))

    def _put(self, rel: str, data: bytes) -> None:
        self.dest.put_bytes(_apt_key(rel), data, headers_of(Kind.APT_DISTS, rel.rsplit("/", 1)[-1]))

    def _suite(self, suite: str, new: list[Deb822], signer: Signer, *, force: bool, resign: bool) -> bool:
        """Merge ``new`` into the suite's index; write and sign it when it changed."""
        files: dict[str, bytes] = {}
        changed = resign or self._read(f"dists/{suite}/InRelease") is None
        for arch in ARCHES:
            rel = f"{COMPONENT}/binary-{arch}/Packages"
            old_raw = self._read(f"dists/{suite}/{rel}") or b""
            merged = {_ident(p): p for p in parse_packages(old_raw.decode("utf-8", "replace"))}
            for p in (p for p in new if p["Architecture"] == arch):
                prior = merged.get(_ident(p))
                if prior is not None and prior.get("SHA256") != p["SHA256"] and not force:
                    raise KmError(
                        f"dists/{suite}: {' '.join(_ident(p))} is already indexed with another SHA256 "
                        "(versions are immutable; --force replaces)"
                    )
                merged[_ident(p)] = p
            data = render_packages(merged.values())
            files[rel], files[rel + ".gz"] = data, gzipped(data)
            changed |= data != old_raw
        if not changed:
            return False
        self._write_suite(suite, files, signer)
        return True

    def _write_suite(self, suite: str, files: dict[str, bytes], signer: Signer) -> None:
        base = f"dists/{suite}"
        for rel, data in files.items():  # by-hash first: a client holding the new InRelease finds them
            folder = rel.rsplit("/", 1)[0]
            self._put(f"{base}/{folder}/by-hash/SHA256/{hashlib.sha256(data).hexdigest()}", data)
        for rel, data in files.items():
            self._put(f"{base}/{rel}", data)
        release = release_file(self.s, suite, files, datetime.now(UTC))
        self._put(f"{base}/Release", release)
        self._put(f"{base}/Release.gpg", signer.detach_sign(release))
        self._put(f"{base}/InRelease", signer.clearsign(release))  # the commit point


def debs_of(names: Iterable[str]) -> list[str]:
    return sorted(n for n in names if n.endswith(".deb"))


def deb_inputs(version: Version, names: Iterable[str], read: Callable[[str], bytes]) -> list[DebInput]:
    return [
        DebInput(n, key_of(Kind.VERSIONED, version=str(version), file=n), read(n)) for n in debs_of(names)
    ]
