"""A local GitHub REST API (api host + upload host) for the endpoints the release publishers use.

Package repositories (:class:`Repo`, in ``repos``): contents (GET, PUT with the blob sha
rules: 201 created, 200 updated, 409/422 on a stale or missing sha), git refs, forks and
pulls, ``/user``; ``reject_puts`` answers 422 to the next content writes.

Releases (drafts hidden from the tag lookup, as on GitHub), assets with ``state``,
``size`` and ``digest`` (``sha256:…``, switchable off to mimic older servers),
``make_latest``, and the error answers: 401 Bad credentials, 404 Not Found,
422 ``already_exists`` for a second release of a tag or a second asset of a name.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Asset:
    id: int
    name: str
    content_type: str
    data: bytes
    state: str = "uploaded"


@dataclass
class Rel:
    id: int
    tag_name: str
    name: str
    draft: bool
    prerelease: bool
    body: str = ""
    target_commitish: str = "main"
    assets: dict[str, Asset] = field(default_factory=dict)


@dataclass
class Repo:
    """A repository for the contents, git refs, forks and pulls endpoints (package repositories)."""

    full_name: str
    default_branch: str = "main"
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # branch → path → content
    heads: dict[str, str] = field(default_factory=dict)  # branch → commit sha
    pulls: list[dict[str, Any]] = field(default_factory=list)
    commits: int = 0

    def __post_init__(self) -> None:
        self.files.setdefault(self.default_branch, {})
        self.heads.setdefault(self.default_branch, hashlib.sha1(self.full_name.encode()).hexdigest())

    def commit(self, branch: str) -> None:
        self.commits += 1
        self.heads[branch] = hashlib.sha1(f"{self.full_name}{branch}{self.commits}".encode()).hexdigest()


def blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FakeGithub:
    repo: str = "kilometers-ai/kilometers-cli"
    token: str = "ghp_testtoken"
    digests: bool = True  # newer API: assets carry "digest": "sha256:…"
    releases: dict[int, Rel] = field(default_factory=dict)
    latest_id: int | None = None
    log: list[tuple[str, str]] = field(default_factory=list)
    race_create: bool = False  # POST /releases: someone else created it first → 422
    break_uploads: int = 0  # the next N uploads end in 502, leaving a "starter" asset
    api_url: str = ""
    upload_url: str = ""
    repos: dict[str, Repo] = field(default_factory=dict)  # package repositories by full name
    user: str = "km-bot"  # the token's user (GET /user)
    reject_puts: int = 0  # the next N content writes are refused with 422
    _next: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def new_id(self) -> int:
        self._next += 1
        return self._next

    def add_release(self, tag: str, *, draft: bool = False, prerelease: bool = False) -> Rel:
        rel = Rel(self.new_id(), tag, tag, draft, prerelease)
        self.releases[rel.id] = rel
        return rel

    def add_asset(self, rel: Rel, name: str, data: bytes, state: str = "uploaded") -> Asset:
        asset = Asset(self.new_id(), name, "application/octet-stream", data, state)
        rel.assets[name] = asset
        return asset

    def by_tag(self, tag: str) -> Rel | None:
        return next((r for r in self.releases.values() if r.tag_name == tag), None)

    def asset_doc(self, rel: Rel, a: Asset) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": a.id,
            "name": a.name,
            "label": "",
            "state": a.state,
            "content_type": a.content_type,
            "size": len(a.data),
            "url": f"{self.api_url}/repos/{self.repo}/releases/assets/{a.id}",
            "browser_download_url": f"https://github.com/{self.repo}/releases/download/{rel.tag_name}/{a.name}",
        }
        if self.digests:
            doc["digest"] = "sha256:" + hashlib.sha256(a.data).hexdigest() if a.state == "uploaded" else None
        return doc

    def release_doc(self, rel: Rel) -> dict[str, Any]:
        return {
            "id": rel.id,
            "tag_name": rel.tag_name,
            "name": rel.name,
            "draft": rel.draft,
            "prerelease": rel.prerelease,
            "body": rel.body,
            "html_url": f"https://github.com/{self.repo}/releases/tag/{rel.tag_name}",
            "upload_url": f"{self.upload_url}/repos/{self.repo}/releases/{rel.id}/assets{{?name,label}}",
            "assets": [self.asset_doc(rel, a) for a in rel.assets.values()],
        }

    def handler(self, upload_host: bool) -> type[BaseHTTPRequestHandler]:
        gh = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:
                pass

            def send(self, status: int, doc: object = None, raw: bytes | None = None) -> None:
                body = raw if raw is not None else (json.dumps(doc).encode() if doc is not None else b"")
                self.send_response(status)
                self.send_header(
                    "Content-Type", "application/json" if raw is None else "application/octet-stream"
                )
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def handle_any(self, method: str) -> None:
                url = urlsplit(self.path)
                with gh._lock:
                    gh.log.append((method, url.path + ("?" + url.query if url.query else "")))
                data = self.body() if method in ("POST", "PATCH", "PUT") else b""
                if self.headers.get("Authorization") != f"Bearer {gh.token}":
                    self.send(401, {"message": "Bad credentials", "documentation_url": "https://docs"})
                    return
                if url.path == "/user":
                    self.send(200, {"login": gh.user})
                    return
                rm = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)?", url.path)
                if rm and rm.group(1) in gh.repos:
                    with gh._lock:
                        self.route_repo(
                            gh.repos[rm.group(1)], method, rm.group(2) or "", parse_qs(url.query), data
                        )
                    return
                prefix = f"/repos/{gh.repo}"
                if not url.path.startswith(prefix + "/"):
                    self.send(404, {"message": "Not Found"})
                    return
                path = url.path[len(prefix) :]
                q = parse_qs(url.query)
                with gh._lock:
                    self.route(method, path, q, data, upload_host)

            def route(self, method: str, path: str, q: dict[str, list[str]], data: bytes, up: bool) -> None:
                m = re.fullmatch(r"/releases/(\d+)/assets", path)
                if up:
                    if method == "POST" and m:
                        self.upload(int(m.group(1)), q.get("name", [""])[0], data)
                    else:
                        self.send(404, {"message": "Not Found"})
                    return
                if method == "GET" and (m2 := re.fullmatch(r"/releases/tags/(.+)", path)):
                    rel = gh.by_tag(m2.group(1))
                    if rel is None or rel.draft:
                        self.send(404, {"message": "Not Found"})
                    else:
                        self.send(200, gh.release_doc(rel))
                elif method == "GET" and path == "/releases/latest":
                    rel = gh.releases.get(gh.latest_id or -1)
                    self.send(200, gh.release_doc(rel)) if rel else self.send(404, {"message": "Not Found"})
                elif method == "GET" and path == "/releases":
                    page, per = int(q.get("page", ["1"])[0]), int(q.get("per_page", ["30"])[0])
                    items = sorted(gh.releases.values(), key=lambda r: -r.id)[(page - 1) * per : page * per]
                    self.send(200, [gh.release_doc(r) for r in items])
                elif method == "POST" and path == "/releases":
                    self.create(json.loads(data))
                elif method == "PATCH" and (m3 := re.fullmatch(r"/releases/(\d+)", path)):
                    rel = gh.releases.get(int(m3.group(1)))
                    if rel is None:
                        self.send(404, {"message": "Not Found"})
                        return
                    doc = json.loads(data)
                    rel.draft = bool(doc.get("draft", rel.draft))
                    rel.prerelease = bool(doc.get("prerelease", rel.prerelease))
                    if doc.get("make_latest") == "true" and not rel.draft and not rel.prerelease:
                        gh.latest_id = rel.id
                    self.send(200, gh.release_doc(rel))
                elif method == "GET" and m:
                    rel = gh.releases.get(int(m.group(1)))
                    if rel is None:
                        self.send(404, {"message": "Not Found"})
                        return
                    page, per = int(q.get("page", ["1"])[0]), int(q.get("per_page", ["30"])[0])
                    items = list(rel.assets.values())[(page - 1) * per : page * per]
                    self.send(200, [gh.asset_doc(rel, a) for a in items])
                elif (m4 := re.fullmatch(r"/releases/assets/(\d+)", path)) and method in ("GET", "DELETE"):
                    aid = int(m4.group(1))
                    for rel in gh.releases.values():
                        for name, a in list(rel.assets.items()):
                            if a.id == aid:
                                if method == "DELETE":
                                    del rel.assets[name]
                                    self.send(204)
                                elif self.headers.get("Accept") == "application/octet-stream":
                                    self.send(200, raw=a.data)
                                else:
                                    self.send(200, gh.asset_doc(rel, a))
                                return
                    self.send(404, {"message": "Not Found"})
                else:
                    self.send(404, {"message": "Not Found"})

            def route_repo(
                self, repo: Repo, method: str, path: str, q: dict[str, list[str]], data: bytes
            ) -> None:
                doc = json.loads(data) if data else {}
                if method == "GET" and path == "":
                    self.send(200, {"full_name": repo.full_name, "default_branch": repo.default_branch})
                elif (m := re.fullmatch(r"/contents/(.+)", path)) and method in ("GET", "PUT"):
                    self.contents(repo, method, unquote(m.group(1)), q, doc)
                elif method == "GET" and (m := re.fullmatch(r"/git/ref/heads/(.+)", path)):
                    head = repo.heads.get(m.group(1))
                    self.send(200, {"object": {"sha": head}}) if head else self.send(
                        404, {"message": "Not Found"}
                    )
                elif method == "POST" and path == "/git/refs":
                    branch = doc["ref"].removeprefix("refs/heads/")
                    if branch in repo.heads:
                        self.send(422, {"message": "Reference already exists"})
                        return
                    repo.files[branch] = dict(repo.files[repo.default_branch])
                    repo.heads[branch] = doc["sha"]
                    self.send(201, {"ref": doc["ref"], "object": {"sha": doc["sha"]}})
                elif method == "POST" and path == "/forks":
                    name = f"{gh.user}/{repo.full_name.split('/')[1]}"
                    if name not in gh.repos:
                        gh.repos[name] = Repo(
                            name,
                            repo.default_branch,
                            {repo.default_branch: dict(repo.files[repo.default_branch])},
                        )
                    self.send(202, {"full_name": name})
                elif method == "GET" and path == "/pulls":
                    head = q.get("head", [""])[0]
                    self.send(200, [p for p in repo.pulls if not head or p["head"] == head])
                elif method == "POST" and path == "/pulls":
                    if any(p["head"] == doc["head"] and p["state"] == "open" for p in repo.pulls):
                        self.send(
                            422,
                            {
                                "message": "Validation Failed",
                                "errors": [{"message": "A pull request already exists"}],
                            },
                        )
                        return
                    number = len(repo.pulls) + 1
                    pr = {**doc, "number": number, "state": "open",
                          "html_url": f"https://github.com/{repo.full_name}/pull/{number}"}  # fmt: skip
                    repo.pulls.append(pr)
                    self.send(201, pr)
                else:
                    self.send(404, {"message": "Not Found"})

            def contents(
                self, repo: Repo, method: str, path: str, q: dict[str, list[str]], doc: dict[str, Any]
            ) -> None:
                branch = (q.get("ref") or [doc.get("branch") or repo.default_branch])[0]
                files = repo.files.get(branch)
                if files is None:
                    self.send(404, {"message": "No commit found for the ref"})
                    return
                current = files.get(path)
                if method == "GET":
                    if current is None:
                        self.send(404, {"message": "Not Found"})
                        return
                    content = base64.b64encode(current).decode()
                    self.send(
                        200, {"type": "file", "path": path, "sha": blob_sha(current), "content": content}
                    )
                    return
                if gh.reject_puts > 0:
                    gh.reject_puts -= 1
                    self.send(422, {"message": "Invalid request. content is not valid Base64"})
                    return
                if current is not None and doc.get("sha") != blob_sha(current):
                    self.send(409 if doc.get("sha") else 422, {"message": f"{path} does not match the sha"})
                    return
                files[path] = base64.b64decode(doc["content"])
                repo.commit(branch)
                self.send(
                    200 if current is not None else 201,
                    {"content": {"path": path, "sha": blob_sha(files[path])}},
                )

            def create(self, doc: dict[str, Any]) -> None:
                tag = doc["tag_name"]
                if gh.race_create and gh.by_tag(tag) is None:
                    gh.add_release(tag, draft=False, prerelease=bool(doc.get("prerelease")))
                if gh.by_tag(tag) is not None:
                    self.send(422, {
                        "message": "Validation Failed",
                        "errors": [{"resource": "Release", "code": "already_exists", "field": "tag_name"}],
                    })  # fmt: skip
                    return
                rel = Rel(gh.new_id(), tag, doc.get("name", tag), bool(doc.get("draft")),
                          bool(doc.get("prerelease")), doc.get("body", ""),
                          doc.get("target_commitish", "main"))  # fmt: skip
                gh.releases[rel.id] = rel
                if doc.get("make_latest", "true") == "true" and not rel.draft and not rel.prerelease:
                    gh.latest_id = rel.id
                self.send(201, gh.release_doc(rel))

            def upload(self, release_id: int, name: str, data: bytes) -> None:
                rel = gh.releases.get(release_id)
                if rel is None or not name:
                    self.send(404, {"message": "Not Found"})
                    return
                if name in rel.assets:
                    self.send(422, {
                        "message": "Validation Failed",
                        "errors": [{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}],
                    })  # fmt: skip
                    return
                if len(data) != int(self.headers.get("Content-Length") or -1):
                    self.send(400, {"message": "short body"})
                    return
                asset = gh.add_asset(rel, name, data)
                asset.content_type = self.headers.get("Content-Type", "")
                if gh.break_uploads > 0:
                    gh.break_uploads -= 1
                    asset.state = "starter"
                    asset.data = data[: len(data) // 2]
                    self.send(502, {"message": "Server Error"})
                    return
                self.send(201, gh.asset_doc(rel, asset))

            def do_GET(self) -> None:
                self.handle_any("GET")

            def do_POST(self) -> None:
                self.handle_any("POST")

            def do_PUT(self) -> None:
                self.handle_any("PUT")

            def do_PATCH(self) -> None:
                self.handle_any("PATCH")

            def do_DELETE(self) -> None:
                self.handle_any("DELETE")

        return Handler


@contextmanager
def fake_github(**kwargs: Any) -> Iterator[FakeGithub]:
    gh = FakeGithub(**kwargs)
    api = ThreadingHTTPServer(("127.0.0.1", 0), gh.handler(upload_host=False))
    up = ThreadingHTTPServer(("127.0.0.1", 0), gh.handler(upload_host=True))
    gh.api_url = f"http://127.0.0.1:{api.server_address[1]}"
    gh.upload_url = f"http://127.0.0.1:{up.server_address[1]}"
    for s in (api, up):
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield gh
    finally:
        for s in (api, up):
            s.shutdown()
            s.server_close()
