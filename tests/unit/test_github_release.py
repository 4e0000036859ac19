"""The GitHub Releases publisher against a local API + upload host."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmrelease.artifacts import Release
from kmrelease.errors import KmError
from kmrelease.github import publish_github_release, token_from_env
from kmrelease.ui import Reporter
from tests.support.fake_github_api import FakeGithub, fake_github
from tests.support.fake_release import make_dist

REPO = "kilometers-ai/kilometers-cli"
TOKEN = "ghp_testtoken"
R = Reporter()


def publish(gh: FakeGithub, rel: Release, **kwargs: object) -> object:
    return publish_github_release(
        rel,
        REPO,
        kwargs.pop("token", TOKEN),
        R,
        api_url=gh.api_url,
        sleep=lambda s: None,
        **kwargs,  # type: ignore[arg-type]
    )


def test_creates_the_release_uploads_everything_then_publishes(tmp_path: Path) -> None:
    rel = make_dist(tmp_path, "v1.0.0")
    with fake_github() as gh:
        out = publish(gh, rel)
    r = gh.by_tag("v1.0.0")
    assert r is not None and not r.draft and not r.prerelease
    assert gh.latest_id == r.id
    assert sorted(r.assets) == sorted(rel.names) and len(rel.names) == 14
    for f in rel.files:
        assert r.assets[f.name].data == f.path.read_bytes()
    assert r.assets["km-linux-amd64"].content_type == "application/octet-stream"
    assert r.assets["SHA256SUMS"].content_type == "text/plain"
    assert r.assets["manifest.json"].content_type == "application/json"
    assert out.created and sorted(out.uploaded) == sorted(rel.names)  # type: ignore[attr-defined]
    # created as a draft, published only after the last asset arrived
    posts = [p for m, p in gh.log if m == "POST"]
    patch_at = next(i for i, (m, _) in enumerate(gh.log) if m == "PATCH")
    assert len(posts) == 15 and all(m != "POST" for m, _ in gh.log[patch_at:])


def test_rerun_skips_identical_assets(tmp_path: Path) -> None:
    rel = make_dist(tmp_path, "v1.0.0")
    with fake_github() as gh:
        publish(gh, rel)
        gh.log.clear()
        out = publish(gh, rel)
    assert out.uploaded == [] and sorted(out.skipped) == sorted(rel.names)  # type: ignore[attr-defined]
    assert [m for m, _ in gh.log if m != "GET"] == []


def test_without_digest_field_identical_assets_are_compared_by_download(tmp_path: Path) -> None:
    rel = make_dist(tmp_path, "v1.0.0")
    with fake_github(digests=False) as gh:
        publish(gh, rel)
        gh.log.clear()
        out = publish(gh, rel)
    assert out.uploaded == []  # type: ignore[attr-defined]
    downloads = [p for m, p in gh.log if m == "GET" and "/releases/assets/" in p]
    assert len(downloads) == len(rel.names)


def test_refuses_to_replace_an_asset_with_other_content(tmp_path: Path) -> None:
    rel = make_dist(tmp_path / "a", "v1.0.0")
    with fake_github() as gh:
        r = gh.add_release("v1.0.0")
        gh.add_asset(r, "km-linux-amd64", b"what users already downloaded")
        with pytest.raises(KmError, match="already has km-linux-amd64 with other content: refusing"):
            publish(gh, rel)
        assert list(r.assets) == ["km-linux-amd64"]  # nothing uploaded
        assert r.assets["km-linux-amd64"].data == b"what users already downloaded"


def test_prerelease_is_marked_and_never_latest(tmp_path: Path) -> None:
    with fake_github() as gh:
        publish(gh, make_dist(tmp_path, "v1.0.0"))
        stable = gh.by_tag("v1.0.0")
        publish(gh, make_dist(tmp_path, "v1.1.0-rc.1"))
        rc = gh.by_tag("v1.1.0-rc.1")
        assert rc is not None and stable is not None
        assert rc.prerelease and not rc.draft
        assert gh.latest_id == stable.id
        # even when asked, GitHub cannot make a pre-release latest: neither do we
        publish(gh, make_dist(tmp_path, "v1.1.0-rc.1"), latest=True)
        assert gh.latest_id == stable.id


def test_an_older_release_is_not_made_latest_when_told(tmp_path: Path) -> None:
    with fake_github() as gh:
        publish(gh, make_dist(tmp_path, "v2.0.0"))
        new = gh.by_tag("v2.0.0")
        publish(gh, make_dist(tmp_path, "v1.9.9"), latest=False)
        assert new is not None and gh.latest_id == new.id


def test_bad_token_is_refused_without_printing_it(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    rel = make_dist(tmp_path, "v1.0.0")
    with fake_github() as gh, pytest.raises(KmError) as err:
        publish(gh, rel, token="ghp_wrong_secret_value")
    msg = str(err.value)
    assert "401" in msg and "GITHUB_TOKEN" in msg and "\n" not in msg
    out, errout = capfd.readouterr()
    for text in (msg, out, errout):
        assert "ghp_wrong_secret_value" not in text and TOKEN not in text


def test_unknown_repository_is_404(tmp_path: Path) -> None:
    with fake_github() as gh, pytest.raises(KmError, match="404 .* not found"):
        publish_github_release(make_dist(tmp_path, "v1.0.0"), "someone/else", TOKEN, R, api_url=gh.api_url)


def test_release_created_concurrently_is_reused(tmp_path: Path) -> None:
    """POST /releases answers 422 already_exists: the publisher finds that release and completes it."""
    rel = make_dist(tmp_path, "v1.0.0")
    with fake_github(race_create=True) as gh:
        out = publish(gh, rel)
        r = gh.by_tag("v1.0.0")
    assert r is not None and sorted(r.assets) == sorted(rel.names)
    assert not out.created  # type: ignore[attr-defined]
    assert len([r for r in gh.releases.values() if r.tag_name == "v1.0.0"]) == 1


def test_asset_uploaded_concurrently_422_is_accepted_when_identical(tmp_path: Path) -> None:
    rel = make_dist(tmp_path, "v1.0.0")
    f = rel.files[0]
    with fake_github() as gh:
        r = gh.add_release("v1.0.0", draft=True)
        # the asset list the publisher read did not have it yet; then it appears identical
        from kmrelease import github as ghmod

        real = ghmod._assets
        calls = {"n": 0}

        def racing(api: object, release_id: int) -> dict[str, dict[str, object]]:
            calls["n"] += 1
            out = real(api, release_id)  # type: ignore[arg-type]
            if calls["n"] == 1:
                gh.add_asset(r, f.name, f.path.read_bytes())
            return out

        ghmod._assets = racing  # type: ignore[assignment]
        try:
            publish(gh, rel)
        finally:
            ghmod._assets = real  # type: ignore[assignment]
    assert r.assets[f.name].data == f.path.read_bytes() and not r.draft


def test_interrupted_upload_leaves_a_partial_asset_that_is_replaced(tmp_path: Path) -> None:
    rel = make_dist(tmp_path, "v1.0.0")
    with fake_github(break_uploads=2) as gh:
        publish(gh, rel)
        r = gh.by_tag("v1.0.0")
    assert r is not None
    assert all(a.state == "uploaded" for a in r.assets.values())
    assert {n: a.data for n, a in r.assets.items()} == {f.name: f.path.read_bytes() for f in rel.files}
    assert len([m for m, p in gh.log if m == "DELETE"]) == 2


def test_partial_asset_from_an_earlier_run_is_replaced(tmp_path: Path) -> None:
    rel = make_dist(tmp_path, "v1.0.0")
    with fake_github() as gh:
        r = gh.add_release("v1.0.0", draft=True)
        gh.add_asset(r, "km-linux-amd64", b"half", state="starter")
        publish(gh, rel)
    assert r.assets["km-linux-amd64"].data == rel.files[0].path.read_bytes()


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    with fake_github() as gh:
        publish(gh, make_dist(tmp_path, "v1.0.0"), dry_run=True)
    assert gh.releases == {} and all(m == "GET" for m, _ in gh.log)


def test_token_from_environment() -> None:
    assert token_from_env({"GITHUB_TOKEN": " abc "}) == "abc"
    with pytest.raises(KmError, match="GITHUB_TOKEN is not set"):
        token_from_env({})
