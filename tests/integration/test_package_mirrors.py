"""The Homebrew tap, the Scoop bucket and the winget pull request against the local GitHub API."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kmrelease.errors import KmError
from kmrelease.matrix import Target
from kmrelease.packages import formats, mirrors
from kmrelease.packages.settings import PackageSettings
from kmrelease.ui import Reporter
from kmrelease.version import parse_version
from tests.support.fake_github_api import FakeGithub, Repo, fake_github

S = PackageSettings()
QUIET = Reporter(quiet=True)
TOKENS = (mirrors.TAP_TOKEN, mirrors.SCOOP_TOKEN, mirrors.WINGET_TOKEN)


def _builds(salt: str) -> list[formats.PackageBuild]:
    targets = {
        "brew": [Target(o, a) for o in ("darwin", "linux") for a in ("amd64", "arm64")],
        "scoop": [Target("windows", a) for a in ("amd64", "arm64")],
        "winget": [Target("windows", a) for a in ("amd64", "arm64")],
    }
    return [
        formats.PackageBuild(t, m, f"{i:x}{salt}".ljust(64, "0"))
        for m, ts in targets.items()
        for i, t in enumerate(ts)
    ]


def _packages(tmp: Path, version: str, salt: str = "a") -> Path:
    v = parse_version(version)
    folder = tmp / version / "packages"
    folder.mkdir(parents=True)
    (folder / "km.rb").write_text(formats.homebrew_formula(S, v, _builds(salt)))
    (folder / "km.json").write_text(formats.scoop_manifest(S, v, _builds(salt)))
    for name, text in formats.winget_manifests(S, v, _builds(salt), "2026-12-01T00:00:00Z").items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def gh(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGithub]:
    with fake_github() as server:
        for repo in (S.tap_repository, S.scoop_repository):
            server.repos[repo] = Repo(repo)
        server.repos[S.winget_repository] = Repo(S.winget_repository, default_branch="master")
        monkeypatch.setenv("KM_GITHUB_API_URL", server.api_url)
        for env in TOKENS:
            monkeypatch.setenv(env, server.token)
        yield server


def test_tap_and_bucket_created_then_unchanged_then_updated(gh: FakeGithub, tmp_path: Path) -> None:
    v1 = _packages(tmp_path, "v1.0.0")
    mirrors.push_mirrors(S, parse_version("v1.0.0"), v1, QUIET, only=["brew", "scoop"])
    tap, bucket = gh.repos[S.tap_repository], gh.repos[S.scoop_repository]
    assert tap.files["main"]["Formula/km.rb"] == (v1 / "km.rb").read_bytes()
    assert bucket.files["main"]["bucket/km.json"] == (v1 / "km.json").read_bytes()
    assert (tap.commits, bucket.commits) == (1, 1)
    # a re-run commits nothing
    assert mirrors.push_formula(S, parse_version("v1.0.0"), v1, QUIET) == "unchanged"
    assert mirrors.push_scoop(S, parse_version("v1.0.0"), v1, QUIET) == "unchanged"
    assert (tap.commits, bucket.commits) == (1, 1)
    # the next release updates them
    v2 = _packages(tmp_path, "v1.1.0", salt="b")
    assert mirrors.push_formula(S, parse_version("v1.1.0"), v2, QUIET) == "updated"
    assert tap.files["main"]["Formula/km.rb"] == (v2 / "km.rb").read_bytes() and tap.commits == 2


def test_winget_pull_request_opened_once(gh: FakeGithub, tmp_path: Path) -> None:
    folder = _packages(tmp_path, "v1.2.3")
    url = mirrors.open_winget_pr(S, parse_version("v1.2.3"), folder, QUIET)
    upstream = gh.repos[S.winget_repository]
    assert url == f"https://github.com/{S.winget_repository}/pull/1"
    (pr,) = upstream.pulls
    assert pr["head"] == f"{gh.user}:KilometersAI.km-1.2.3" and pr["base"] == "master"
    fork = gh.repos[f"{gh.user}/winget-pkgs"]
    branch = fork.files["KilometersAI.km-1.2.3"]
    for name in formats.winget_file_names(S).values():
        assert branch[f"manifests/k/KilometersAI/km/1.2.3/{name}"] == (folder / name).read_bytes()
    commits = fork.commits
    assert mirrors.open_winget_pr(S, parse_version("v1.2.3"), folder, QUIET) == url  # re-run: nothing new
    assert len(upstream.pulls) == 1 and fork.commits == commits
    # once merged upstream, nothing is opened again
    upstream.pulls.clear()
    for name in formats.winget_file_names(S).values():
        upstream.files["master"][f"manifests/k/KilometersAI/km/1.2.3/{name}"] = b"merged"
    assert mirrors.open_winget_pr(S, parse_version("v1.2.3"), folder, QUIET) is None
    assert upstream.pulls == []


def test_without_tokens_every_push_is_skipped_with_a_note(
    gh: FakeGithub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for env in TOKENS:
        monkeypatch.delenv(env)
    mirrors.push_mirrors(S, parse_version("v1.0.0"), _packages(tmp_path, "v1.0.0"), Reporter())
    err = capsys.readouterr().err
    for env in TOKENS:
        assert f"{env} is not set" in err
    assert gh.log == []


def test_a_refused_token_is_one_line_without_the_token(
    gh: FakeGithub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(mirrors.TAP_TOKEN, "ghp_wrong-token-value")
    with pytest.raises(KmError) as err:
        mirrors.push_formula(S, parse_version("v1.0.0"), _packages(tmp_path, "v1.0.0"), QUIET)
    assert "401" in str(err.value) and mirrors.TAP_TOKEN in str(err.value)
    assert "ghp_wrong-token-value" not in str(err.value) and "\n" not in str(err.value)
    assert gh.repos[S.tap_repository].commits == 0


def test_a_422_is_one_clear_error_and_nothing_is_committed(gh: FakeGithub, tmp_path: Path) -> None:
    gh.reject_puts = 1
    with pytest.raises(KmError, match="422"):
        mirrors.push_scoop(S, parse_version("v1.0.0"), _packages(tmp_path, "v1.0.0"), QUIET)
    assert gh.repos[S.scoop_repository].commits == 0
    assert (
        mirrors.push_scoop(S, parse_version("v1.0.0"), tmp_path / "v1.0.0" / "packages", QUIET) == "created"
    )


def test_a_github_that_never_answers_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True).start()
    monkeypatch.setenv("KM_GITHUB_API_URL", f"http://127.0.0.1:{listener.getsockname()[1]}")
    monkeypatch.setenv(mirrors.TAP_TOKEN, "t")
    monkeypatch.setattr(mirrors, "TIMEOUT", (1, 1))
    started = time.monotonic()
    with pytest.raises(KmError, match="cannot reach GitHub"):
        mirrors.push_formula(S, parse_version("v1.0.0"), _packages(tmp_path, "v1.0.0"), QUIET)
    assert time.monotonic() - started < 10
    listener.close()


def test_missing_packages_and_unknown_names_are_refused(gh: FakeGithub, tmp_path: Path) -> None:
    with pytest.raises(KmError, match="inv packages --version v1.0.0"):
        mirrors.push_mirrors(S, parse_version("v1.0.0"), tmp_path, QUIET)
    with pytest.raises(KmError, match="unknown package repositories"):
        mirrors.push_mirrors(S, parse_version("v1.0.0"), tmp_path, QUIET, only=["chocolatey"])
    assert gh.log == []
