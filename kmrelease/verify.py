"""Stage: verify a release through its public URL, the way a user's installer sees it."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from .artifacts import check_manifest, parse_sums
from .config import BuildConfig
from .errors import KmError
from .httpbounds import BadRedirect, Limits, TooLarge, excerpt, open_bounded, read_capped
from .layout import MANIFEST, SUMS, sha256_name
from .sign.keys import TrustedKey
from .sign.stage import verify_pair
from .sign.statement import P256, SIG
from .ui import Reporter
from .urlspace import ROUTES, Kind, key_of, public_path, resolve
from .version import ACCEPTED_FORM, Version, parse_version


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    checked: int = 0

    def add(self, problem: str) -> None:
        self.problems.append(problem)


# Caps on what a server may send: small text files, and a sane binary size.
TEXT_CAP = 256 * 1024
APT_CAP = 16 * 1024 * 1024  # a Packages index grows by one paragraph per version
VERSION_CAP = 1024
BINARY_CAP = 512 * 1024 * 1024


class _Client:
    """GETs through :mod:`kmrelease.httpbounds`: a server that cannot be reached, stalls or
    trickles stops the verification (``Unreachable``); an oversized body or a refused redirect
    is a finding about that URL."""

    def __init__(self, base_url: str, findings: Findings, limits: Limits) -> None:
        self.base = base_url.rstrip("/")
        self.findings = findings
        self.limits = limits
        self._sessions = threading.local()  # one keep-alive session per thread

    @property
    def session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        return session

    def reporting_to(self, findings: Findings) -> _Client:
        """The same client (server, limits, sessions) recording its findings in ``findings``."""
        other = _Client.__new__(_Client)
        other.__dict__.update(self.__dict__, findings=findings)
        return other

    def get(self, path: str) -> requests.Response | None:
        """GET ``path``: checks the status and the headers the URL-space table requires."""
        try:
            resp = open_bounded(self.session, self.base + path, self.limits)
        except BadRedirect as exc:
            self.findings.checked += 1
            self.findings.add(f"{path}: {exc}")
            return None
        self.findings.checked += 1
        if resp.status_code != 200:
            self.findings.add(f"{path}: HTTP {resp.status_code}")
            resp.close()
            return None
        resolved = resolve(path)
        if resolved is not None:
            for header, want in resolved.headers.items():
                got = resp.headers.get(header)
                if got != want:
                    shown = "missing" if got is None else excerpt(got)
                    self.findings.add(f"{path}: {header} is {shown}, expected {want!r}")
        return resp

    def text(self, path: str, cap: int = TEXT_CAP) -> str | None:
        raw = self.raw(path, cap)
        return None if raw is None else raw.decode("utf-8", "replace")

    def raw(self, path: str, cap: int = TEXT_CAP) -> bytes | None:
        resp = self.get(path)
        if resp is None:
            return None
        try:
            return b"".join(read_capped(resp, cap, self.limits))
        except TooLarge:
            self.findings.add(f"{path}: larger than {cap} bytes")
            return None

    def digest(self, path: str) -> tuple[int, str] | None:
        resp = self.get(path)
        if resp is None:
            return None
        h, size = hashlib.sha256(), 0
        try:
            for chunk in read_capped(resp, BINARY_CAP, self.limits):
                h.update(chunk)
                size += len(chunk)
        except TooLarge:
            self.findings.add(f"{path}: larger than {BINARY_CAP} bytes")
            return None
        return size, h.hexdigest()


def sha256_file_claim(text: str, name: str) -> str | None:
    """The hash of a ``<file>.sha256`` body, strictly: one line ``<64 hex>  <name>`` (hex in any
    case); None for anything else (another file's name, two lines, trailing junk)."""
    m = _SIDE_LINE.fullmatch(text)
    if not m or m.group(2) != name:
        return None
    return m.group(1).lower()


_SIDE_LINE = re.compile(r"([0-9a-fA-F]{64})  ([A-Za-z0-9][A-Za-z0-9._-]*)\n?", re.ASCII)


def _release_files(client: _Client, folder: str, version: Version, build: BuildConfig, f: Findings) -> None:
    """Check one folder (``releases/<v>`` or ``releases/latest``) against its manifest."""
    prefix = "/" + folder.rstrip("/") + "/"
    raw = client.text(prefix + MANIFEST)
    if raw is None:
        return
    try:
        arts = check_manifest(json.loads(raw), version, build)
    except (ValueError, KmError) as exc:
        f.add(f"{prefix}{MANIFEST}: {excerpt(str(exc), 120, quote=False)}")
        return
    sums_text = client.text(prefix + SUMS)
    try:
        sums = parse_sums(sums_text) if sums_text is not None else {}
    except ValueError as exc:
        f.add(f"{prefix}{SUMS}: {excerpt(str(exc), 120, quote=False)}")
        sums = {}
    # The artifacts are fetched side by side (each with its own findings, merged in manifest order):
    # the hashing and the network waits overlap.
    jobs = [(client.reporting_to(Findings()), a) for a in arts]
    with ThreadPoolExecutor(max_workers=VERIFY_WORKERS) as pool:
        list(pool.map(lambda job: _artifact(job[0], prefix, job[1], sums), jobs))
    for job_client, _ in jobs:
        f.checked += job_client.findings.checked
        f.problems.extend(job_client.findings.problems)


VERIFY_WORKERS = 4  # artifacts fetched at once


def _artifact(client: _Client, prefix: str, a: dict[str, Any], sums: dict[str, str]) -> None:
    """One artifact's bytes against the manifest, SHA256SUMS and its ``.sha256``."""
    name = a["name"]
    got = client.digest(prefix + name)
    if got is None:
        return
    size, hexd = got
    claims = [
        (
            "manifest.json",
            excerpt(f"{a['sha256']} ({a['size']} bytes)", 90, quote=False),
            a["sha256"] == hexd and a["size"] == size,
        )
    ]
    if sums:
        claims.append((SUMS, str(sums.get(name)), sums.get(name) == hexd))
    side = client.text(prefix + sha256_name(name))
    if side is not None:
        claim = sha256_file_claim(side, name)
        shown = excerpt(side.strip(), 100)
        if claim is None:
            shown += f" (not one line '<sha256>  {name}')"
        claims.append((sha256_name(name), shown, claim == hexd))
    wrong = [f"{source} says {value}" for source, value, ok in claims if not ok]
    if wrong:
        client.findings.add(f"{prefix}{name}: sha256 {hexd} ({size} bytes), but {'; '.join(wrong)}")


def _apt_index(client: _Client, version: Version, f: Findings) -> None:
    """The version's .deb files (listed in its SHA256SUMS) are in the APT index of its suites."""
    from .packages.apt_verify import check_apt
    from .packages.settings import load_settings

    raw = client.raw(f"/{key_of(Kind.VERSIONED, version=str(version), file=SUMS)}")
    try:
        sums = parse_sums(raw.decode("utf-8", "replace")) if raw is not None else {}
    except ValueError:
        return  # _release_files reported it
    for problem in check_apt(lambda p: client.raw(p, APT_CAP), version, sums, load_settings()):
        f.add(problem)


def _signatures(
    client: _Client, folder: str, version: Version, trusted: Sequence[TrustedKey], f: Findings
) -> None:
    """Both signatures of ``SHA256SUMS`` in ``folder`` verify with one of the ``trusted`` keys."""
    prefix = "/" + folder.rstrip("/") + "/"
    sums, sig, p256 = (client.raw(prefix + name) for name in (SUMS, SIG, P256))
    if sums is None or sig is None or p256 is None:
        return  # the missing file is already a finding
    if not any(verify_pair(sig.decode("utf-8", "replace"), p256, str(version), sums, t.key) for t in trusted):
        names = ", ".join(t.name for t in trusted) or "none"
        f.add(f"{prefix}{SUMS}: its signatures do not verify for {version} with a trusted key ({names})")


def verify(
    base_url: str,
    reporter: Reporter,
    build: BuildConfig,
    *,
    version: str | None = None,
    limits: Limits | None = None,
    trusted: Sequence[TrustedKey] | None = None,
) -> Findings:
    """Check /health, /version, every artifact's hash (file names from ``build``) and (with ``trusted``)
    the release signatures;
    raise with the list of problems.

    Every wait is bounded (:class:`~kmrelease.httpbounds.Limits`): a server that does not
    answer, stalls or trickles ends the verification with one line, within a minute or so."""
    if not base_url.startswith(("http://", "https://")):
        raise KmError(f"base URL must start with http:// or https://, not {base_url!r}")
    wanted = parse_version(version) if version else None
    f = Findings()
    client = _Client(base_url, f, limits or Limits())
    reporter.step(f"verify {base_url}" + (f" for {wanted}" if wanted else ""))
    current: Version | None = None
    version_text = client.text(public_path(key_of(Kind.VERSION)), VERSION_CAP)
    if version_text is not None:
        try:
            current = parse_version(version_text.rstrip("\n"))
            if version_text != f"{current}\n":
                f.add(f"/version: {excerpt(version_text)} should be exactly one line")
        except KmError:
            f.add(f"/version: {excerpt(version_text)} is not a version ({ACCEPTED_FORM})")
    health_text = client.text(public_path(key_of(Kind.HEALTH)))
    if health_text is not None:
        try:
            health = json.loads(health_text)
            if health.get("status") != "ok":
                f.add(f"/health: status is {excerpt(str(health.get('status')))}")
            if current and health.get("version") != str(current):
                f.add(f"/health: names {excerpt(str(health.get('version')))}, /version names {current}")
            if not health.get("published_at"):
                f.add("/health: no published_at")
        except (ValueError, AttributeError):
            f.add("/health: not a JSON object")
    target = wanted or current
    if target is not None:
        _release_files(client, key_of(Kind.VERSIONED, version=str(target), file=""), target, build, f)
        _apt_index(client, target, f)
        if trusted is not None:
            _signatures(client, key_of(Kind.VERSIONED, version=str(target), file=""), target, trusted, f)
        if current is not None and target == current:
            _release_files(client, key_of(Kind.LATEST, file=""), target, build, f)
            for route in ROUTES:
                if route.kind in (Kind.INSTALL_SH, Kind.INSTALL_PS1):
                    body = client.text(route.pattern)
                    if body is not None and not body.strip():
                        f.add(f"{route.pattern}: empty install script")
    if f.problems:
        for p in f.problems:
            reporter.warn(p)
        raise KmError(f"verify failed: {len(f.problems)} problem(s) at {base_url} (listed above)")
    reporter.step(f"verified {f.checked} URLs at {base_url}: {target} is intact")
    return f
