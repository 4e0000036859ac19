"""SPEC §5/§6 against Azurite: layout, headers, MD5, immutability, idempotence, promotion, rollback."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient, ContentSettings

from kmrelease.destinations.azure import AzureBlobDestination
from kmrelease.errors import KmError
from kmrelease.hashing import digest_bytes
from kmrelease.ui import Reporter, _NullBar
from kmrelease.urlspace import CONTAINERS, Kind, headers_of, key_of
from kmrelease.version import parse_version
from tests.integration.azure.conftest import all_blobs, assert_consistent, blob_props, read_blob
from tests.support.releases import promote, publish

pytestmark = pytest.mark.azurite
R = Reporter(quiet=True)
BIG = {"km-linux-amd64": 9 * 1024 * 1024 + 123}  # > 4 MiB: a block-list upload, not a single put


def test_layout_headers_and_md5(
    dest: AzureBlobDestination, blobs: BlobServiceClient, release_of: Any, scripts: Path
) -> None:
    rel = release_of("v1.0.0", sizes=BIG)
    out = publish(rel, dest, R, scripts=scripts)
    assert out.promoted and out.current == "v1.0.0"
    assert sorted(out.uploaded) == sorted(rel.names)

    names = set(rel.names)
    expected = (
        {key_of(Kind.VERSIONED, version="v1.0.0", file=n) for n in names}
        | {key_of(Kind.LATEST, file=n) for n in names}
        | {key_of(Kind.VERSION), key_of(Kind.HEALTH), key_of(Kind.INSTALL_SH), key_of(Kind.INSTALL_PS1)}
    )
    assert set(all_blobs(blobs)) == expected
    # the containers of what was written (a release without packages or keys leaves apt/ and keys/ alone)
    assert {"install", "meta", "releases"} <= {c.name for c in blobs.list_containers()} <= set(CONTAINERS)

    for f in rel.files:
        for kind, key in (
            (Kind.VERSIONED, key_of(Kind.VERSIONED, version="v1.0.0", file=f.name)),
            (Kind.LATEST, key_of(Kind.LATEST, file=f.name)),
        ):
            p = blob_props(blobs, key)
            want = headers_of(kind, f.name)
            assert p.content_settings.content_type == want["Content-Type"], key
            assert p.content_settings.cache_control == want["Cache-Control"], key
            assert (
                bytes(p.content_settings.content_md5)
                == f.digest.md5
                == hashlib.md5(f.path.read_bytes()).digest()
            ), key
            assert p.size == f.digest.size
            assert read_blob(blobs, key) == f.path.read_bytes()
    assert blob_props(blobs, "releases/v1.0.0/km-linux-amd64").blob_type == "BlockBlob"
    assert headers_of(Kind.VERSIONED, "x")["Cache-Control"] == "public, max-age=86400, immutable"

    assert read_blob(blobs, "meta/version") == b"v1.0.0\n"
    p = blob_props(blobs, "meta/version")
    assert (p.content_settings.content_type, p.content_settings.cache_control) == (
        "text/plain; charset=utf-8",
        "public, max-age=300",
    )
    assert bytes(p.content_settings.content_md5) == hashlib.md5(b"v1.0.0\n").digest()
    health = json.loads(read_blob(blobs, "meta/health") or b"")
    assert health["status"] == "ok" and health["version"] == "v1.0.0" and health["published_at"]
    p = blob_props(blobs, "meta/health")
    assert (p.content_settings.content_type, p.content_settings.cache_control) == (
        "application/json",
        "no-cache",
    )
    p = blob_props(blobs, "install/install.sh")
    assert (p.content_settings.content_type, p.content_settings.cache_control) == (
        "text/plain; charset=utf-8",
        "public, max-age=600",
    )
    assert read_blob(blobs, "install/install.sh") == (scripts / "install.sh").read_bytes()
    # the versioned files were written before anything public changed
    assert blob_props(blobs, "meta/version").last_modified >= max(
        blob_props(blobs, key_of(Kind.LATEST, file=n)).last_modified for n in names
    )


def test_rerun_uploads_nothing(
    dest: AzureBlobDestination, blobs: BlobServiceClient, release_of: Any, scripts: Path
) -> None:
    rel = release_of("v1.0.0")
    publish(rel, dest, R, scripts=scripts)
    before = {k: (b.last_modified, b.etag) for k, b in all_blobs(blobs).items()}  # type: ignore[attr-defined]
    again = publish(rel, dest, R, scripts=scripts)
    assert again.uploaded == [] and again.bytes_uploaded == 0
    assert sorted(again.skipped) == sorted(rel.names)
    assert not again.changed_public
    after = {k: (b.last_modified, b.etag) for k, b in all_blobs(blobs).items()}  # type: ignore[attr-defined]
    assert after == before


def test_versions_are_immutable_unless_forced(
    dest: AzureBlobDestination, blobs: BlobServiceClient, tmp_path: Path, release_of: Any, scripts: Path
) -> None:
    from tests.support.fake_release import make_dist

    publish(release_of("v1.0.0"), dest, R, scripts=scripts)
    before = {k: b.etag for k, b in all_blobs(blobs).items()}  # type: ignore[attr-defined]
    rebuilt = make_dist(tmp_path / "other", "v1.0.0", salt="changed")
    with pytest.raises(KmError, match="already published with other content.*--force"):
        publish(rebuilt, dest, R, scripts=scripts)
    assert {k: b.etag for k, b in all_blobs(blobs).items()} == before  # type: ignore[attr-defined]

    out = publish(rebuilt, dest, R, scripts=scripts, force=True)
    assert sorted(out.uploaded) == sorted(rebuilt.names)
    assert_consistent(blobs, {"v1.0.0": rebuilt})


def test_if_none_match_protects_versioned_blobs(
    dest: AzureBlobDestination, blobs: BlobServiceClient, tmp_path: Path
) -> None:
    key = "releases/v9.9.9/km-linux-amd64"
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"A" * 1000)
    b.write_bytes(b"B" * 1000)
    h = headers_of(Kind.VERSIONED, "km-linux-amd64")
    dest.upload(key, a, digest_bytes(a.read_bytes()), h, overwrite=False, bar=_NullBar())
    etag = blob_props(blobs, key).etag
    # the same content again: If-None-Match refuses, the MD5 proves it is ours → fine
    dest.upload(key, a, digest_bytes(a.read_bytes()), h, overwrite=False, bar=_NullBar())
    with pytest.raises(KmError, match="already exists .* other content"):
        dest.upload(key, b, digest_bytes(b.read_bytes()), h, overwrite=False, bar=_NullBar())
    assert blob_props(blobs, key).etag == etag
    dest.upload(key, b, digest_bytes(b.read_bytes()), h, overwrite=True, bar=_NullBar())
    assert read_blob(blobs, key) == b.read_bytes()


def test_promotion_rollback_and_prereleases(
    dest: AzureBlobDestination, blobs: BlobServiceClient, release_of: Any, scripts: Path
) -> None:
    v1, v2 = release_of("v1.0.0"), release_of("v1.1.0")
    releases = {"v1.0.0": v1, "v1.1.0": v2}
    publish(v1, dest, R, scripts=scripts)
    publish(v2, dest, R, scripts=scripts)
    assert assert_consistent(blobs, releases) == "v1.1.0"

    # an older version published later does not become current
    v0 = release_of("v0.9.0")
    releases["v0.9.0"] = v0
    out = publish(v0, dest, R, scripts=scripts)
    assert not out.promoted and assert_consistent(blobs, releases) == "v1.1.0"

    # a pre-release is published under its own path and never becomes current by itself
    rc = release_of("v1.2.0-rc.1")
    releases["v1.2.0-rc.1"] = rc
    out = publish(rc, dest, R, scripts=scripts)
    assert not out.promoted
    assert assert_consistent(blobs, releases) == "v1.1.0"
    assert blob_props(blobs, "releases/v1.2.0-rc.1/manifest.json") is not None
    assert json.loads(read_blob(blobs, "meta/health") or b"")["version"] == "v1.1.0"

    # rollback (`inv promote --version v1.0.0`): latest/ is v1.0.0 again, v1.1.0 is kept
    out = promote(dest, parse_version("v1.0.0"), R, scripts=scripts)
    assert out.promoted
    assert assert_consistent(blobs, releases) == "v1.0.0"
    assert json.loads(read_blob(blobs, "meta/health") or b"")["version"] == "v1.0.0"
    assert blob_props(blobs, "releases/v1.1.0/km-linux-amd64") is not None
    for f in v1.files:
        p = blob_props(blobs, key_of(Kind.LATEST, file=f.name))
        assert p.content_settings.cache_control == "public, max-age=86400"  # latest/, not immutable

    # the pre-release made current on request (`--promote`)
    out = publish(rc, dest, R, scripts=scripts, promote=True)
    assert out.promoted and out.uploaded == []
    assert assert_consistent(blobs, releases) == "v1.2.0-rc.1"

    # promoting a version that was never published changes nothing
    with pytest.raises(KmError, match="never published"):
        promote(dest, parse_version("v7.0.0"), R, scripts=scripts)
    assert assert_consistent(blobs, releases) == "v1.2.0-rc.1"


def test_promote_refuses_incomplete_version(
    dest: AzureBlobDestination, blobs: BlobServiceClient, release_of: Any, scripts: Path
) -> None:
    v1, v2 = release_of("v1.0.0"), release_of("v1.1.0")
    publish(v2, dest, R, scripts=scripts)
    publish(v1, dest, R, scripts=scripts)
    blobs.get_blob_client("releases", "v1.0.0/km-darwin-arm64").delete_blob()
    with pytest.raises(KmError, match="incomplete"):
        promote(dest, parse_version("v1.0.0"), R, scripts=scripts)
    assert assert_consistent(blobs, {"v1.0.0": v1, "v1.1.0": v2}) == "v1.1.0"


def test_rerun_repairs_latest_headers(
    dest: AzureBlobDestination, blobs: BlobServiceClient, release_of: Any, scripts: Path
) -> None:
    """A copy whose headers never got set (a crash between copy and set-properties) is redone."""
    rel = release_of("v1.0.0")
    publish(rel, dest, R, scripts=scripts)
    bc = blobs.get_blob_client("releases", "latest/SHA256SUMS")
    md5 = bc.get_blob_properties().content_settings.content_md5
    bc.set_http_headers(
        ContentSettings(
            content_type="text/plain; charset=utf-8",
            cache_control="public, max-age=86400, immutable",
            content_md5=md5,
        )
    )
    publish(rel, dest, R, scripts=scripts)
    assert bc.get_blob_properties().content_settings.cache_control == "public, max-age=86400"


def test_dry_run_and_check_writable_change_nothing(
    dest: AzureBlobDestination, blobs: BlobServiceClient, release_of: Any, scripts: Path
) -> None:
    out = publish(release_of("v1.0.0"), dest, R, scripts=scripts, dry_run=True)
    assert out.uploaded == [] and not out.promoted
    assert list(blobs.list_containers()) == []  # not even the containers


def test_production_accounts_never_get_containers_created(
    azurite: Any, blobs: BlobServiceClient, release_of: Any, scripts: Path
) -> None:
    from tests.integration.azure.conftest import FAST

    d = AzureBlobDestination.from_connection_string(azurite.connection_string(), R, retry=FAST)
    d.create_containers = False  # what a non-loopback account gets: terraform owns the containers
    with pytest.raises(KmError, match="terraform"):
        publish(release_of("v1.0.0"), d, R, scripts=scripts)
    assert list(blobs.list_containers()) == []


def test_list_and_delete(
    dest: AzureBlobDestination, blobs: BlobServiceClient, release_of: Any, scripts: Path
) -> None:
    assert dest.list("releases/latest/") == []
    rel = release_of("v1.0.0")
    publish(rel, dest, R, scripts=scripts)
    assert dest.list("releases/latest/") == sorted(f"releases/latest/{n}" for n in rel.names)
    dest.delete("releases/latest/SHA256SUMS")
    dest.delete("releases/latest/SHA256SUMS")  # missing is fine
    assert dest.stat("releases/latest/SHA256SUMS") is None
    assert dest.read_bytes("meta/nothing") is None
    with pytest.raises(KmError, match="unsafe"):
        dest.stat("releases/../meta/version")


def test_large_files_go_in_blocks_with_content_md5(
    dest: AzureBlobDestination,
    blobs: BlobServiceClient,
    release_of: Any,
    scripts: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above SINGLE_PUT a file is uploaded as 4 MiB blocks (two at a time) + a block list,
    and still gets its whole-file Content-MD5."""
    import kmrelease.destinations.azure as azure_mod

    monkeypatch.setattr(azure_mod, "SINGLE_PUT", 1024 * 1024)
    rel = release_of("v1.0.0", sizes=BIG)
    publish(rel, dest, R, scripts=scripts)
    big = next(f for f in rel.files if f.name == "km-linux-amd64")
    bc = blobs.get_blob_client("releases", "v1.0.0/km-linux-amd64")
    committed, _ = bc.get_block_list()
    assert len(committed) == 3  # 4 + 4 + 1 MiB
    assert bytes(bc.get_blob_properties().content_settings.content_md5) == big.digest.md5
    assert assert_consistent(blobs, {"v1.0.0": rel}) == "v1.0.0"
