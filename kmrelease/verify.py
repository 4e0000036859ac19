"""Stage: verify a release through its public URL, the way a user's installer sees it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import requests

from .artifacts import check_manifest, parse_sums
from .errors import KmError
from .layout import MANIFEST, SUMS, sha256_name
from .ui import Reporter
from .urlspace import ROUTES, Kind, key_of, public_path, resolve
from .version import Version, parse_version


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    checked: int = 0

    def add(self, problem: str) -> None:
        self.problems.append(problem)


class _Client:
    def __init__(self, base_url: str, findings: Findings) -> None:
        self.base = base_url.rstrip("/")
        self.findings = findings
        self.session = requests.Session()

    def get(self, path: str) -> requests.Response | None:
        """GET ``path``: checks the status and the headers the URL-space table requires."""
        url = self.base + path
        try:
            resp = self.session.get(url, stream=True, timeout=30)
        except requests.ConnectionError:
            raise KmError(f"cannot reach {url}: connection failed") from None
        except requests.RequestException as exc:
            raise KmError(f"cannot reach {url}: {type(exc).__name__}") from None
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
                    self.findings.add(f"{path}: {header} is {got!r}, expected {want!r}")
        return resp

    def text(self, path: str) -> str | None:
        resp = self.get(path)
        return None if resp is None else resp.content.decode("utf-8", "replace")

    def digest(self, path: str) -> tuple[int, str] | None:
        resp = self.get(path)
        if resp is None:
            return None
        h, size = hashlib.sha256(), 0
        try:
            for chunk in resp.iter_content(1 << 20):
                h.update(chunk)
                size += len(chunk)
        except requests.RequestException as exc:
            self.findings.add(f"{path}: download broke off: {type(exc).__name__}")
            return None
        return size, h.hexdigest()


def _release_files(client: _Client, folder: str, version: Version, f: Findings) -> None:
    """Check one folder (``releases/<v>`` or ``releases/latest``) against its manifest."""
    prefix = "/" + folder.rstrip("/") + "/"
    raw = client.text(prefix + MANIFEST)
    if raw is None:
        return
    try:
        arts = check_manifest(json.loads(raw), version)
    except (ValueError, KmError) as exc:
        f.add(f"{prefix}{MANIFEST}: {exc}")
        return
    sums_text = client.text(prefix + SUMS)
    try:
        sums = parse_sums(sums_text) if sums_text is not None else {}
    except ValueError as exc:
        f.add(f"{prefix}{SUMS}: {exc}")
        sums = {}
    for a in arts:
        name = a["name"]
        got = client.digest(prefix + name)
        if got is None:
            continue
        size, hexd = got
        claims = [
            ("manifest.json", f"{a['sha256']} ({a['size']} bytes)", a["sha256"] == hexd and a["size"] == size)
        ]
        if sums:
            claims.append((SUMS, str(sums.get(name)), sums.get(name) == hexd))
        side = client.text(prefix + sha256_name(name))
        if side is not None:
            claims.append((sha256_name(name), repr(side.strip()), side == f"{hexd}  {name}\n"))
        wrong = [f"{source} says {value}" for source, value, ok in claims if not ok]
        if wrong:
            f.add(f"{prefix}{name}: sha256 {hexd} ({size} bytes), but {'; '.join(wrong)}")


def verify(base_url: str, reporter: Reporter, *, version: str | None = None) -> Findings:
    """Check /health, /version and every artifact's hash; raise with the list of problems."""
    if not base_url.startswith(("http://", "https://")):
        raise KmError(f"base URL must start with http:// or https://, not {base_url!r}")
    wanted = parse_version(version) if version else None
    f = Findings()
    client = _Client(base_url, f)
    reporter.step(f"verify {base_url}" + (f" for {wanted}" if wanted else ""))
    current: Version | None = None
    version_text = client.text(public_path(key_of(Kind.VERSION)))
    if version_text is not None:
        try:
            current = parse_version(version_text.rstrip("\n"))
            if version_text != f"{current}\n":
                f.add(f"/version: {version_text!r} should be exactly one line")
        except KmError as exc:
            f.add(f"/version: {exc}")
    health_text = client.text(public_path(key_of(Kind.HEALTH)))
    if health_text is not None:
        try:
            health = json.loads(health_text)
            if health.get("status") != "ok":
                f.add(f"/health: status is {health.get('status')!r}")
            if current and health.get("version") != str(current):
                f.add(f"/health: names {health.get('version')!r}, /version names {current}")
            if not health.get("published_at"):
                f.add("/health: no published_at")
        except (ValueError, AttributeError):
            f.add("/health: not a JSON object")
    target = wanted or current
    if target is not None:
        _release_files(client, key_of(Kind.VERSIONED, version=str(target), file=""), target, f)
        if current is not None and target == current:
            _release_files(client, key_of(Kind.LATEST, file=""), target, f)
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
