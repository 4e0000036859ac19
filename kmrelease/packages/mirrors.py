"""Package repositories on GitHub: the Homebrew tap, the Scoop bucket, the winget pull request.

Through the GitHub REST API with ``requests`` (contents, git refs, forks, pulls), each with
its own token: ``KM_TAP_TOKEN`` (``Formula/km.rb`` in the tap), ``KM_SCOOP_TOKEN``
(``bucket/km.json`` in the bucket), ``KM_WINGET_TOKEN`` (a branch of the token user's fork
of ``microsoft/winget-pkgs`` and a pull request). A push without its token is skipped with
a note. Every push reads first and writes only what differs, so a re-run changes nothing
(an identical file is not committed again; an open or merged pull request is not opened
again). Every request has a connect and a read timeout; tokens are sent only as a header
and never printed.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from ..errors import KmError
from ..ui import Reporter
from ..version import Version
from . import formats
from .settings import PackageSettings

API_URL = "https://api.github.com"
TIMEOUT = (10, 30)  # connect, read: seconds
TAP_TOKEN, SCOOP_TOKEN, WINGET_TOKEN = "KM_TAP_TOKEN", "KM_SCOOP_TOKEN", "KM_WINGET_TOKEN"
MIRRORS = ("brew", "scoop", "winget")


class GithubApi:
    def __init__(self, token: str, token_env: str, api_url: str | None = None) -> None:
        self.api = (api_url or os.environ.get("KM_GITHUB_API_URL") or API_URL).rstrip("/")
        self.token_env = token_env
        self._token = token
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "kmrelease",
                "Authorization": f"Bearer {token}",
            }
        )

    def call(self, method: str, path: str, *, ok: Sequence[int] = (200,), what: str, **kw: Any) -> Any:
        """One request; the JSON answer (None for an allowed 404), or one clear KmError."""
        try:
            resp = self.session.request(method, self.api + path, timeout=TIMEOUT, **kw)
        except requests.RequestException as exc:
            raise KmError(f"{what}: cannot reach GitHub ({type(exc).__name__})") from None
        if resp.status_code in ok:
            return None if resp.status_code in (204, 404) or not resp.content else resp.json()
        try:
            message = str(resp.json().get("message", ""))
        except (ValueError, AttributeError):
            message = resp.text[:200]
        message = message.replace(self._token, "***") if self._token else message
        if resp.status_code == 401:
            raise KmError(f"{what}: GitHub refused the token (401 {message}): check {self.token_env}")
        if resp.status_code in (403, 404):
            raise KmError(
                f"{what}: {resp.status_code} from GitHub ({message}): {self.token_env} needs contents:write"
            )
        raise KmError(f"{what}: GitHub answered {resp.status_code} ({message})")

    def get_file(self, repo: str, path: str, branch: str | None = None) -> tuple[str, bytes] | None:
        """(blob sha, content) of a file, or None when it does not exist."""
        params = {"ref": branch} if branch else None
        doc = self.call(
            "GET",
            f"/repos/{repo}/contents/{quote(path)}",
            ok=(200, 404),
            what=f"read {repo}/{path}",
            params=params,
        )
        if doc is None:
            return None
        return str(doc["sha"]), base64.b64decode(doc.get("content") or "")

    def put_file(self, repo: str, path: str, data: bytes, message: str, branch: str | None = None) -> str:
        """Create or update a file unless it already holds ``data``: created, updated or unchanged."""
        current = self.get_file(repo, path, branch)
        if current is not None and current[1] == data:
            return "unchanged"
        body: dict[str, Any] = {"message": message, "content": base64.b64encode(data).decode()}
        if current is not None:
            body["sha"] = current[0]
        if branch:
            body["branch"] = branch
        self.call(
            "PUT",
            f"/repos/{repo}/contents/{quote(path)}",
            ok=(200, 201),
            what=f"commit {repo}/{path}",
            json=body,
        )
        return "updated" if current is not None else "created"


def _token(env: str, what: str, reporter: Reporter) -> str | None:
    token = os.environ.get(env, "").strip()
    if not token:
        reporter.info(f"{env} is not set: {what} skipped")
    return token or None


def push_formula(s: PackageSettings, version: Version, folder: Path, reporter: Reporter) -> str | None:
    token = _token(TAP_TOKEN, f"Homebrew tap {s.tap_repository}", reporter)
    if token is None:
        return None
    data = (folder / f"{s.formula}.rb").read_bytes()
    path = f"Formula/{s.formula}.rb"
    state = GithubApi(token, TAP_TOKEN).put_file(s.tap_repository, path, data, f"{s.formula} {version}")
    reporter.info(f"Homebrew tap {s.tap_repository}: {path} {state}")
    return state


def push_scoop(s: PackageSettings, version: Version, folder: Path, reporter: Reporter) -> str | None:
    token = _token(SCOOP_TOKEN, f"Scoop bucket {s.scoop_repository}", reporter)
    if token is None:
        return None
    data = (folder / f"{s.binary}.json").read_bytes()
    path = f"bucket/{s.binary}.json"
    state = GithubApi(token, SCOOP_TOKEN).put_file(s.scoop_repository, path, data, f"{s.binary} {version}")
    reporter.info(f"Scoop bucket {s.scoop_repository}: {path} {state}")
    return state


@dataclass(frozen=True)
class WingetPlan:
    upstream: str  # microsoft/winget-pkgs
    folder: str  # manifests/k/KilometersAI/km/1.2.3
    branch: str  # KilometersAI.km-1.2.3


def winget_plan(s: PackageSettings, version: Version) -> WingetPlan:
    publisher, _, name = s.winget_identifier.partition(".")
    plain = str(version)[1:]
    folder = f"manifests/{publisher[0].lower()}/{publisher}/{name.replace('.', '/')}/{plain}"
    return WingetPlan(s.winget_repository, folder, f"{s.winget_identifier}-{plain}")


def open_winget_pr(s: PackageSettings, version: Version, folder: Path, reporter: Reporter) -> str | None:
    """Fork, branch, commit the three manifests, open the pull request; its URL (None: skipped)."""
    token = _token(WINGET_TOKEN, f"winget pull request to {s.winget_repository}", reporter)
    if token is None:
        return None
    api, plan = GithubApi(token, WINGET_TOKEN), winget_plan(s, version)
    names = formats.winget_file_names(s)
    upstream = api.call("GET", f"/repos/{plan.upstream}", what=f"read {plan.upstream}")
    base = str(upstream["default_branch"])
    if api.get_file(plan.upstream, f"{plan.folder}/{names['installer']}", base) is not None:
        reporter.info(f"winget: {plan.folder} is already in {plan.upstream}: nothing to do")
        return None
    login = str(api.call("GET", "/user", what="read the token's user")["login"])
    head = f"{login}:{plan.branch}"
    pulls = api.call(
        "GET",
        f"/repos/{plan.upstream}/pulls",
        what="list pull requests",
        params={"head": head, "state": "all"},
    )
    if pulls:
        reporter.info(f"winget: pull request already opened: {pulls[0].get('html_url')}")
        return str(pulls[0].get("html_url"))
    fork = api.call("POST", f"/repos/{plan.upstream}/forks", ok=(200, 202), what=f"fork {plan.upstream}")
    fork_repo = str(fork["full_name"])
    sha = api.call("GET", f"/repos/{plan.upstream}/git/ref/heads/{base}", what="read the base branch")[
        "object"
    ]["sha"]
    api.call(
        "POST",
        f"/repos/{fork_repo}/git/refs",
        ok=(201, 422),
        what=f"branch {plan.branch} in {fork_repo}",
        json={"ref": f"refs/heads/{plan.branch}", "sha": sha},
    )  # fmt: skip  (422: the branch is there from an earlier run)
    for name in names.values():
        api.put_file(
            fork_repo, f"{plan.folder}/{name}", (folder / name).read_bytes(),
            f"New version: {s.winget_identifier} version {str(version)[1:]}", branch=plan.branch,
        )  # fmt: skip
    pr = api.call(
        "POST", f"/repos/{plan.upstream}/pulls", ok=(201,), what=f"open the pull request on {plan.upstream}",
        json={
            "title": f"New version: {s.winget_identifier} version {str(version)[1:]}",
            "head": head, "base": base,
            "body": f"{s.binary} {version}: manifests generated by the release (kmrelease).",
        },
    )  # fmt: skip
    reporter.info(f"winget: opened {pr.get('html_url')}")
    return str(pr.get("html_url"))


def push_mirrors(
    s: PackageSettings, version: Version, folder: Path, reporter: Reporter, *, only: Sequence[str] = MIRRORS,
    dry_run: bool = False,
) -> None:  # fmt: skip
    """The Homebrew tap, the Scoop bucket and the winget pull request, from ``dist/<v>/packages/``."""
    unknown = sorted(set(only) - set(MIRRORS))
    if unknown:
        raise KmError(f"unknown package repositories {unknown}: expected some of {', '.join(MIRRORS)}")
    reporter.step(f"package repositories for {version}: {', '.join(only)}")
    missing = [n for n in (f"{s.formula}.rb", f"{s.binary}.json") if not (folder / n).is_file()]
    if missing:
        raise KmError(f"{folder} lacks {', '.join(missing)}: run `inv packages --version {version}` first")
    if dry_run:
        reporter.info(
            f"would push {s.tap_repository}, {s.scoop_repository} and open a PR on {s.winget_repository}"
        )
        return
    if "brew" in only:
        push_formula(s, version, folder, reporter)
    if "scoop" in only:
        push_scoop(s, version, folder, reporter)
    if "winget" in only:
        open_winget_pr(s, version, folder, reporter)
