"""Stage: attach a release's files to the GitHub Release of its tag (the installers' fallback).

With ``requests`` against the REST API. The release is created as a draft when
missing, every file of the release (SPEC §1 names, ``.sha256``, ``SHA256SUMS``,
``manifest.json``) is uploaded to the upload host, and only then is the draft
published, so ``releases/latest/download/<file>`` never sees a release without
its assets. Assets already there with the same size and SHA-256 are skipped;
one with other content is refused before anything is uploaded (a reused tag
must never change what users download). Pre-releases are marked as such and
never made latest. The token (``GITHUB_TOKEN``) is sent only as a header and
never printed.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from .artifacts import Release, ReleaseFile
from .errors import KmError
from .hashing import CHUNK
from .httpbounds import Limits, TooLarge, Unreachable, read_all
from .ui import Bar, Reporter

API_URL = "https://api.github.com"
TOKEN_ENV = "GITHUB_TOKEN"
API_VERSION = "2022-11-28"
TIMEOUT = (10, 300)  # connect, read
ATTEMPTS = 3
# An API answer (JSON) is read whole within 60 s + size ÷ 64 KiB/s and at most 16 MiB: a server
# trickling bytes cannot hold a release forever.
BODY_LIMITS = Limits(stall=300, total=60, min_rate=64 * 1024)
BODY_CAP = 16 * 1024 * 1024


def token_from_env(environ: dict[str, str] | None = None) -> str:
    token = (environ if environ is not None else os.environ).get(TOKEN_ENV, "").strip()
    if not token:
        raise KmError(
            f"{TOKEN_ENV} is not set: a token with contents:write on the repository publishes releases"
        )
    return token


@dataclass
class GithubOutcome:
    release_id: int = 0
    html_url: str = ""
    created: bool = False
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bytes_uploaded: int = 0


class _Api:
    def __init__(self, api_url: str, repo: str, token: str, session: requests.Session | None = None) -> None:
        self.api = api_url.rstrip("/")
        self.repo = repo
        self._token = token
        self.session = session or requests.Session()
        self.session.headers.update(
            {
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "kmrelease",
            }
        )
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def request(
        self, method: str, url: str, *, ok: tuple[int, ...] = (200,), what: str, **kwargs: Any
    ) -> requests.Response:
        if not url.startswith("http"):
            url = f"{self.api}/repos/{self.repo}{url}"
        last: str = ""
        streamed = bool(kwargs.pop("stream", False))
        for attempt in range(ATTEMPTS):
            try:
                resp = self.session.request(method, url, timeout=TIMEOUT, stream=True, **kwargs)
                if not streamed:  # an API answer: read whole, within a deadline and a cap
                    read_all(resp, BODY_CAP, BODY_LIMITS)
            except (requests.RequestException, Unreachable, TooLarge) as exc:
                last = f"cannot reach GitHub: {exc if isinstance(exc, KmError) else type(exc).__name__}"
                if method in ("GET", "PATCH", "DELETE") and attempt + 1 < ATTEMPTS:
                    time.sleep(0.5 * 2**attempt)
                    continue
                raise GithubError(self.redact(f"{what}: {last}"), None) from None
            if resp.status_code in ok:
                return resp
            if resp.status_code >= 500 and method in ("GET", "PATCH", "DELETE") and attempt + 1 < ATTEMPTS:
                time.sleep(0.5 * 2**attempt)
                continue
            raise _error(self, what, resp)
        raise GithubError(self.redact(f"{what}: {last}"), None)  # pragma: no cover


class GithubError(KmError):
    """A failed GitHub API call; ``status`` is None when no HTTP answer came."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


def _message(resp: requests.Response) -> tuple[str, list[dict[str, Any]]]:
    try:
        doc = resp.json()
    except ValueError:
        return resp.text.strip()[:200], []
    if not isinstance(doc, dict):
        return "", []
    raw = doc.get("errors")
    errors: list[Any] = raw if isinstance(raw, list) else []
    return str(doc.get("message", "")), [e for e in errors if isinstance(e, dict)]


def _error(api: _Api, what: str, resp: requests.Response) -> GithubError:
    message, errors = _message(resp)
    status = resp.status_code
    if status == 401:
        text = f"{what}: GitHub refused the token (401 {message or 'Bad credentials'}): check {TOKEN_ENV}"
    elif status == 404:
        text = (
            f"{what}: 404 from GitHub: repository {api.repo} not found, or {TOKEN_ENV} cannot see it "
            "(it needs contents:write)"
        )
    elif status == 403:
        text = f"{what}: 403 from GitHub: {message or 'forbidden'} ({TOKEN_ENV} needs contents:write)"
    else:
        codes = ", ".join(f"{e.get('field', '')} {e.get('code', '')}".strip() for e in errors)
        text = f"{what}: HTTP {status} from GitHub: {message}" + (f" ({codes})" if codes else "")
    return GithubError(api.redact(text), status)


def _already_exists(exc: KmError) -> bool:
    return "already_exists" in str(exc)


def _find_release(api: _Api, tag: str) -> dict[str, Any] | None:
    try:
        resp = api.request("GET", f"/releases/tags/{quote(tag)}", what=f"look up release {tag}")
        return dict(resp.json())
    except GithubError as exc:
        if exc.status != 404:
            raise
    # a draft has no tag yet: the tag lookup misses it, the release list does not
    for page in (1, 2, 3):
        resp = api.request("GET", f"/releases?per_page=100&page={page}", what="list releases")
        items = resp.json()
        for item in items:
            if item.get("tag_name") == tag:
                return dict(item)
        if len(items) < 100:
            break
    return None


def _assets(api: _Api, release_id: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    page = 1
    while True:
        resp = api.request(
            "GET", f"/releases/{release_id}/assets?per_page=100&page={page}", what="list release assets"
        )
        items = resp.json()
        for a in items:
            out[a["name"]] = a
        if len(items) < 100:
            return out
        page += 1


def _remote_sha256(api: _Api, asset: dict[str, Any]) -> str:
    digest = asset.get("digest")
    if isinstance(digest, str) and digest.startswith("sha256:"):
        return digest.removeprefix("sha256:")
    # older servers: no digest field, so download the asset and hash it
    resp = api.request(
        "GET",
        asset["url"],
        what=f"download asset {asset['name']}",
        headers={"Accept": "application/octet-stream"},
        stream=True,
    )
    sha = hashlib.sha256()
    with resp:
        for chunk in resp.iter_content(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


class _Upload:
    """A streamed request body that reports progress (never the whole file in memory)."""

    def __init__(self, f: ReleaseFile, bar: Bar) -> None:
        self.f, self.bar = f, bar

    def __len__(self) -> int:
        return self.f.digest.size

    def __iter__(self) -> Iterator[bytes]:
        with self.f.path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                self.bar.advance(len(chunk))
                yield chunk


def content_type(name: str) -> str:
    if name.endswith(".json"):
        return "application/json"
    if name.endswith(".sha256") or name == "SHA256SUMS":
        return "text/plain"
    return "application/octet-stream"


def publish_github_release(
    release: Release,
    repo: str,
    token: str,
    reporter: Reporter,
    *,
    api_url: str = API_URL,
    dry_run: bool = False,
    prerelease: bool | None = None,
    latest: bool | None = None,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    binary: str = "km",
) -> GithubOutcome:
    """Create or complete the GitHub Release of ``release.version``; idempotent."""
    tag = str(release.version)
    pre = release.version.is_prerelease if prerelease is None else prerelease
    make_latest = (not pre) if latest is None else (latest and not pre)
    api = _Api(api_url, repo, token, session)
    outcome = GithubOutcome()
    reporter.step(f"GitHub release {tag} of {repo}" + (" (pre-release)" if pre else ""))

    rel = _find_release(api, tag)
    assets = _assets(api, int(rel["id"])) if rel else {}
    todo: list[ReleaseFile] = []
    stale: list[dict[str, Any]] = []
    conflicts: list[str] = []
    for f in release.files:
        a = assets.get(f.name)
        if a is None:
            todo.append(f)
        elif a.get("state") != "uploaded":
            stale.append(a)  # a failed earlier upload: delete and upload again
            todo.append(f)
        elif int(a.get("size", -1)) == f.digest.size and _remote_sha256(api, a) == f.digest.sha256:
            outcome.skipped.append(f.name)
        else:
            conflicts.append(f.name)
    if conflicts:
        raise KmError(
            f"GitHub release {tag} already has {', '.join(conflicts)} with other content: refusing to "
            "replace published assets (a reused tag must not change what users download)"
        )
    reporter.info(
        f"{'release exists' if rel else 'release will be created'}: {len(todo)} asset(s) to upload, "
        f"{len(outcome.skipped)} already there"
    )
    if dry_run:
        for f in todo:
            reporter.info(f"would upload {f.name} ({f.digest.size} bytes)")
        return outcome

    if rel is None:
        body: dict[str, Any] = {
            "tag_name": tag,
            "name": tag,
            "draft": True,
            "prerelease": pre,
            "make_latest": "false",
            "body": f"{binary} {tag}\n\nChecksums: `SHA256SUMS`; the same files are under /releases/{tag}/.",
        }
        commit = release.manifest.get("commit")
        if isinstance(commit, str) and commit:
            body["target_commitish"] = commit
        try:
            rel = dict(
                api.request("POST", "/releases", ok=(201,), what=f"create release {tag}", json=body).json()
            )
            outcome.created = True
        except GithubError as exc:
            if not _already_exists(exc):
                raise
            rel = _find_release(api, tag)  # created concurrently
            if rel is None:
                raise
    release_id = int(rel["id"])
    outcome.release_id, outcome.html_url = release_id, str(rel.get("html_url", ""))
    upload_base = str(rel["upload_url"]).split("{", 1)[0]

    for a in stale:
        api.request(
            "DELETE", f"/releases/assets/{a['id']}", ok=(204, 404), what=f"delete partial {a['name']}"
        )
    if todo:
        total = sum(f.digest.size for f in todo)
        with reporter.progress(), reporter.bar(f"GitHub {tag}", total) as overall:
            for f in todo:
                with reporter.bar(f.name, f.digest.size) as bar:
                    _upload(api, upload_base, release_id, f, _Both(bar, overall), sleep)
                outcome.uploaded.append(f.name)
                outcome.bytes_uploaded += f.digest.size

    # read back before publishing the draft
    final = _assets(api, release_id)
    for f in release.files:
        a = final.get(f.name)
        if a is None or a.get("state") != "uploaded" or int(a.get("size", -1)) != f.digest.size:
            raise KmError(
                f"GitHub release {tag}: asset {f.name} did not arrive intact; run the release again"
            )
        digest = a.get("digest")
        if isinstance(digest, str) and digest != f"sha256:{f.digest.sha256}":
            raise KmError(
                f"GitHub release {tag}: asset {f.name} has {digest}, expected sha256:{f.digest.sha256}"
            )

    patch: dict[str, Any] = {}
    if rel.get("draft"):
        patch["draft"] = False
    if bool(rel.get("prerelease")) != pre:
        patch["prerelease"] = pre
    if make_latest:
        current = _latest_id(api)
        if current != release_id or patch:
            patch["make_latest"] = "true"
    elif patch:
        patch["make_latest"] = "false"
    if patch:
        api.request("PATCH", f"/releases/{release_id}", what=f"publish release {tag}", json=patch)
    state = "pre-release" if pre else ("latest" if make_latest else "not latest")
    reporter.info(
        f"GitHub release {tag} ({state}): {len(outcome.uploaded)} uploaded, {len(outcome.skipped)} unchanged"
        + (f" — {outcome.html_url}" if outcome.html_url else "")
    )
    return outcome


def _latest_id(api: _Api) -> int | None:
    try:
        return int(api.request("GET", "/releases/latest", what="look up the latest release").json()["id"])
    except GithubError as exc:
        if exc.status == 404:
            return None
        raise


class _Both:
    def __init__(self, *bars: Bar) -> None:
        self._bars = bars

    def advance(self, amount: int) -> None:
        for b in self._bars:
            b.advance(amount)


def _upload(
    api: _Api, upload_base: str, release_id: int, f: ReleaseFile, bar: Bar, sleep: Callable[[float], None]
) -> None:
    url = f"{upload_base}?name={quote(f.name)}"
    for attempt in range(ATTEMPTS):
        try:
            api.request(
                "POST",
                url,
                ok=(201,),
                what=f"upload {f.name}",
                data=_Upload(f, bar),
                headers={"Content-Type": content_type(f.name), "Content-Length": str(f.digest.size)},
            )
            return
        except GithubError as exc:
            error = exc
        transient = error.status is None or error.status >= 500
        if not transient and not _already_exists(error):
            raise error
        # an interrupted upload may have landed, or left a partial asset behind
        existing = _assets(api, release_id).get(f.name)
        if existing is not None:
            if existing.get("state") == "uploaded" and int(existing.get("size", -1)) == f.digest.size:
                if _remote_sha256(api, existing) == f.digest.sha256:
                    return
                raise KmError(f"GitHub release asset {f.name} appeared with other content") from None
            api.request(
                "DELETE", f"/releases/assets/{existing['id']}", ok=(204, 404), what=f"delete partial {f.name}"
            )
        elif not transient:
            raise error
        if attempt + 1 >= ATTEMPTS:
            raise error
        sleep(0.5 * 2**attempt)
