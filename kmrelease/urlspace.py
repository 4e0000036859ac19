"""The public URL space (SPEC §5) and the blob layout behind it: one table.

Every stage reads this module: the publishers (which origin key each file gets
and with which headers), the local edge server (which public path serves which
key), the verifier, the CDN purge, the terraform checks and the tests.

An *origin key* is ``<container>/<blob name>``. The local site directory stores
the key as a relative path; Azure Storage stores it as container + blob. Front
Door maps public paths to keys exactly like :func:`resolve`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from .version import VERSION_PATTERN

TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
BINARY = "application/octet-stream"
DEB = "application/vnd.debian.binary-package"
PGP_KEYS = "application/pgp-keys"
PGP_SIGNATURE = "application/pgp-signature"
GZIP = "application/gzip"


class Kind(StrEnum):
    INSTALL_SH = "install_sh"
    INSTALL_PS1 = "install_ps1"
    VERSION = "version"
    HEALTH = "health"
    VERSIONED = "versioned"
    LATEST = "latest"
    APT_POOL = "apt_pool"  # the .deb files of the APT repository (SPEC §14): immutable
    APT_DISTS = "apt_dists"  # its signed index: InRelease, Release(.gpg), Packages(.gz), by-hash
    APT_KEYRING = "apt_keyring"  # the archive keyring (OpenPGP, binary)
    ALLOWED_SIGNERS = "allowed_signers"
    RELEASE_KEYS = "release_keys"


@dataclass(frozen=True)
class ObjectClass:
    """A class of objects at the origin, with the headers stored on each."""

    kind: Kind
    key: str  # template: may hold {version} and {file}
    cache_control: str
    content_type: str | None  # None: derived from the file name
    max_age: int | None  # seconds the CDN may cache it (None: never)

    @property
    def container(self) -> str:
        return self.key.split("/", 1)[0]


@dataclass(frozen=True)
class Route:
    """A public path pattern served from an object class."""

    pattern: str  # "/releases/{version}/{file}"
    kind: Kind
    purge: bool  # purged after a promotion (SPEC §6 step 5)


OBJECTS: tuple[ObjectClass, ...] = (
    ObjectClass(Kind.INSTALL_SH, "install/install.sh", "public, max-age=600", TEXT, 600),
    ObjectClass(Kind.INSTALL_PS1, "install/install.ps1", "public, max-age=600", TEXT, 600),
    ObjectClass(Kind.VERSION, "meta/version", "public, max-age=300", TEXT, 300),
    ObjectClass(Kind.HEALTH, "meta/health", "no-cache", JSON, None),
    ObjectClass(Kind.VERSIONED, "releases/{version}/{file}", "public, max-age=86400, immutable", None, 86400),
    ObjectClass(Kind.LATEST, "releases/latest/{file}", "public, max-age=86400", None, 86400),
    ObjectClass(Kind.APT_POOL, "apt/pool/{path}", "public, max-age=86400, immutable", None, 86400),
    ObjectClass(Kind.APT_DISTS, "apt/dists/{path}", "public, max-age=300", None, 300),
    ObjectClass(Kind.APT_KEYRING, "apt/kilometers-archive-keyring.gpg", "public, max-age=300", PGP_KEYS, 300),
    # SPEC §13: the trusted release keys, for convenience (trust never comes from the CDN)
    ObjectClass(Kind.ALLOWED_SIGNERS, "keys/allowed_signers", "public, max-age=300", TEXT, 300),
    ObjectClass(Kind.RELEASE_KEYS, "keys/release-keys.pem", "public, max-age=300", TEXT, 300),
)

ROUTES: tuple[Route, ...] = (
    Route("/", Kind.INSTALL_SH, purge=True),
    Route("/install.sh", Kind.INSTALL_SH, purge=True),
    Route("/install/install.sh", Kind.INSTALL_SH, purge=True),
    Route("/install.ps1", Kind.INSTALL_PS1, purge=True),
    Route("/install/install.ps1", Kind.INSTALL_PS1, purge=True),
    Route("/version", Kind.VERSION, purge=True),
    Route("/health", Kind.HEALTH, purge=True),
    Route("/releases/latest/{file}", Kind.LATEST, purge=True),
    Route("/keys/allowed_signers", Kind.ALLOWED_SIGNERS, purge=True),
    Route("/keys/release-keys.pem", Kind.RELEASE_KEYS, purge=True),
    Route("/releases/{version}/{file}", Kind.VERSIONED, purge=False),
    Route("/apt/pool/{path}", Kind.APT_POOL, purge=False),
    Route("/apt/dists/{path}", Kind.APT_DISTS, purge=True),
    Route("/apt/kilometers-archive-keyring.gpg", Kind.APT_KEYRING, purge=False),
)

OBJECT: dict[Kind, ObjectClass] = {o.kind: o for o in OBJECTS}
CONTAINERS: tuple[str, ...] = tuple(dict.fromkeys(o.container for o in OBJECTS))
LATEST = "latest"

# What may appear in {file} and {version} of a public path: no traversal, no
# hidden files, no query tricks.
_FILE_RE = r"(?P<file>[A-Za-z0-9][A-Za-z0-9._-]*)"
_VERSION_RE = rf"(?P<version>{VERSION_PATTERN})"  # the one version grammar (ASCII only)
# {path}: one or more such segments (the APT tree), Debian's ~ and + allowed.
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._~+-]*"
_PATH_RE = rf"(?P<path>{_SEGMENT}(?:/{_SEGMENT})*)"


def _compile(pattern: str) -> re.Pattern[str]:
    rx = re.escape(pattern).replace(r"\{file\}", _FILE_RE).replace(r"\{version\}", _VERSION_RE)
    rx = rx.replace(r"\{path\}", _PATH_RE)
    return re.compile("^" + rx + "$", re.ASCII)


_COMPILED: tuple[tuple[Route, re.Pattern[str]], ...] = tuple((r, _compile(r.pattern)) for r in ROUTES)


_TEXT_NAMES = ("SHA256SUMS", "Packages", "Release", "InRelease")


def content_type_for(filename: str) -> str:
    """The Content-Type of a release file, from its name."""
    if filename.endswith((".sha256", ".rb", ".yaml", ".sig")) or filename in _TEXT_NAMES:
        return TEXT
    if filename.endswith(".deb"):
        return DEB
    if filename.endswith(".gz"):
        return GZIP
    if filename == "Release.gpg":
        return PGP_SIGNATURE
    if filename.endswith(".json"):
        return JSON
    return BINARY


def key_of(kind: Kind, *, version: str = "", file: str = "", path: str = "") -> str:
    """The origin key of an object: ``key_of(Kind.VERSIONED, version="v1.0.0", file="SHA256SUMS")``."""
    return OBJECT[kind].key.format(version=version, file=file, path=path)


def headers_of(kind: Kind, filename: str = "") -> dict[str, str]:
    """The Content-Type and Cache-Control stored on an object of this kind."""
    cls = OBJECT[kind]
    return {
        "Content-Type": cls.content_type or content_type_for(filename),
        "Cache-Control": cls.cache_control,
    }


@dataclass(frozen=True)
class Resolved:
    kind: Kind
    key: str
    filename: str

    @property
    def headers(self) -> dict[str, str]:
        return headers_of(self.kind, self.filename)


def resolve(path: str) -> Resolved | None:
    """Map a public path (no query string) to the origin object it serves."""
    for route, rx in _COMPILED:
        m = rx.match(path)
        if not m:
            continue
        groups = m.groupdict()
        version, file = groups.get("version", ""), groups.get("file", "")
        if route.kind is Kind.VERSIONED and version == LATEST:
            continue
        key = key_of(route.kind, version=version or "", file=file or "", path=groups.get("path") or "")
        return Resolved(route.kind, key, key.rsplit("/", 1)[-1])
    return None


def public_path(key: str) -> str:
    """The canonical public path of an origin key (the inverse of :func:`resolve`)."""
    if resolve("/" + key) is not None and resolve("/" + key).key == key:  # type: ignore[union-attr]
        return "/" + key
    for route, _ in _COMPILED:
        cls = OBJECT[route.kind]
        rx = _compile(cls.key)
        m = rx.match(key)
        if m:
            return route.pattern.format(**m.groupdict())
    raise ValueError(f"no public path for origin key {key!r}")


def purge_paths() -> list[str]:
    """The public paths purged after a promotion, with ``*`` for a whole folder."""
    paths: list[str] = []
    for route in ROUTES:
        if not route.purge:
            continue
        path = route.pattern.replace("{file}", "*").replace("{path}", "*")
        folder = path.rsplit("/", 1)[0]
        if folder and folder != "/" and path.count("/") > 1 and not path.endswith("*"):
            path = folder + "/*"  # /install/install.sh → /install/*
        if path not in paths:
            paths.append(path)
    return paths
