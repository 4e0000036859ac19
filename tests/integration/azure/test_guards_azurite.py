"""Guards against Azurite (issue 14 point 2, issue 13 point 6): a same-size corrupted versioned blob
that kept its stored Content-MD5 is never promoted, and two publishers at once never leave
meta/version naming an incomplete version (lease lock + ETag-conditional commit point)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from kmrelease.destinations.azure import AzureBlobDestination
from kmrelease.destinations.azure_guard import LOCK_KEY
from kmrelease.errors import KmError
from kmrelease.ui import Reporter
from kmrelease.urlspace import Kind, headers_of, key_of
from kmrelease.version import parse_version
from tests.integration.azure.conftest import FAST, all_blobs, assert_consistent, blob_props, read_blob
from tests.support import azurite as azurite_mod
from tests.support.releases import promote, publish

pytestmark = pytest.mark.azurite
R = Reporter(quiet=True)


def flip_keeping_md5(service: BlobServiceClient, key: str) -> None:
    """Rewrite a blob with one byte flipped, same size, and its old Content-MD5 property kept
    (what a stat sees is unchanged; only the content is not)."""
    container, _, name = key.partition("/")
    client = service.get_blob_client(container, name)
    props = client.get_blob_properties()
    data = bytearray(client.download_blob().readall())
    data[len(data) // 2] ^= 0x01
    client.upload_blob(bytes(data), overwrite=True)
    client.set_http_headers(content_settings=props.content_settings)  # Set Blob Properties: not checked
    after = client.get_blob_properties()
    assert (
        after.size == props.size and after.content_settings.content_md5 == props.content_settings.content_md5
    )


def snapshot(service: BlobServiceClient) -> dict[str, bytes | None]:
    return {k: read_blob(service, k) for k in sorted(all_blobs(service))}


def other(azurite: azurite_mod.Azurite) -> AzureBlobDestination:
    return AzureBlobDestination.from_connection_string(azurite.connection_string(), R, retry=FAST)


def test_promote_refuses_a_corrupted_blob_with_its_old_md5(
    dest: AzureBlobDestination, blobs: BlobServiceClient, release_of: Any, scripts: Any
) -> None:
    v1, v2 = release_of("v1.0.0"), release_of("v1.1.0")
    publish(v1, dest, R, scripts=scripts)
    publish(v2, dest, R, scripts=scripts)
    flip_keeping_md5(blobs, "releases/v1.0.0/km-linux-amd64")
    before = snapshot(blobs)
    with pytest.raises(
        KmError, match=r"releases/v1\.0\.0/km-linux-amd64 no longer matches its published checksum"
    ):
        promote(dest, parse_version("v1.0.0"), R, scripts=scripts)
    assert snapshot(blobs) == before
    assert read_blob(blobs, "meta/version") == b"v1.1.0\n"


def test_release_refuses_a_corrupted_blob_with_its_old_md5(
    dest: AzureBlobDestination, blobs: BlobServiceClient, release_of: Any, scripts: Any
) -> None:
    v1, rc = release_of("v1.0.0"), release_of("v1.2.0-rc.1")
    publish(v1, dest, R, scripts=scripts)
    publish(rc, dest, R, scripts=scripts)  # a pre-release: published, not current
    flip_keeping_md5(blobs, "releases/v1.2.0-rc.1/km-windows-amd64.exe")
    before = snapshot(blobs)
    with pytest.raises(KmError, match=r"km-windows-amd64\.exe no longer matches its published checksum"):
        publish(rc, dest, R, scripts=scripts, promote=True)
    assert snapshot(blobs) == before
    assert read_blob(blobs, "meta/version") == b"v1.0.0\n"
    assert_consistent(blobs, {"v1.0.0": v1})


def test_a_held_lease_refuses_a_second_publisher_naming_the_holder(
    dest: AzureBlobDestination,
    azurite: azurite_mod.Azurite,
    blobs: BlobServiceClient,
    release_of: Any,
    scripts: Any,
) -> None:
    v1, v2 = release_of("v1.0.0"), release_of("v1.1.0")
    publish(v1, dest, R, scripts=scripts)
    assert blob_props(blobs, LOCK_KEY) is None, "no lock blob stays behind"
    before = snapshot(blobs)
    with dest.publishing("release v9.9.9"):
        for attempt in (
            lambda: publish(v2, other(azurite), R, scripts=scripts),
            lambda: promote(other(azurite), parse_version("v1.0.0"), R, scripts=scripts),
        ):
            with pytest.raises(KmError, match=r"is locked by another publisher: release v9\.9\.9 \(pid "):
                attempt()
    assert {k: v for k, v in snapshot(blobs).items() if k != LOCK_KEY} == before
    assert blob_props(blobs, LOCK_KEY) is None
    publish(v2, other(azurite), R, scripts=scripts)  # free again
    assert read_blob(blobs, "meta/version") == b"v1.1.0\n"


class _Slow(AzureBlobDestination):
    def copy(self, src: str, dst: str, headers: dict[str, str]) -> None:
        threading.Event().wait(0.05)
        super().copy(src, dst, headers)


def test_two_publishers_at_once(
    azurite: azurite_mod.Azurite, blobs: BlobServiceClient, release_of: Any, scripts: Any
) -> None:
    v1, v2 = release_of("v1.0.0"), release_of("v1.1.0")
    publish(v1, other(azurite), R, scripts=scripts)

    def slow() -> AzureBlobDestination:
        return _Slow.from_connection_string(azurite.connection_string(), R, retry=FAST)  # type: ignore[return-value]

    jobs: dict[str, Callable[[], object]] = {
        "release v1.1.0": lambda: publish(v2, slow(), R, scripts=scripts),
        "promote v1.0.0": lambda: promote(slow(), parse_version("v1.0.0"), R, scripts=scripts),
    }
    start = threading.Barrier(len(jobs))
    results: dict[str, str] = {}

    def run(name: str, work: Callable[[], object]) -> None:
        start.wait()
        try:
            work()
            results[name] = "ok"
        except KmError as exc:
            results[name] = str(exc)

    threads = [threading.Thread(target=run, args=item) for item in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results) == sorted(jobs)
    assert "ok" in results.values()
    for message in results.values():
        assert message == "ok" or "is locked by another publisher: " in message, message
    current = assert_consistent(blobs, {"v1.0.0": v1, "v1.1.0": v2})
    assert current in ("v1.0.0", "v1.1.0")
    assert blob_props(blobs, LOCK_KEY) is None


def test_commit_point_is_an_etag_conditional_write(
    dest: AzureBlobDestination, blobs: BlobServiceClient
) -> None:
    key, headers = key_of(Kind.VERSION), headers_of(Kind.VERSION)
    dest.replace_if(key, b"v1.0.0\n", headers, None)  # If-None-Match: *
    with pytest.raises(KmError, match="changed by another publisher meanwhile"):
        dest.replace_if(key, b"v2.0.0\n", headers, None)
    with pytest.raises(KmError, match=r"changed by another publisher meanwhile \(now 'v1\.0\.0'\)"):
        dest.replace_if(key, b"v2.0.0\n", headers, b"v0.9.0\n")
    dest.replace_if(key, b"v2.0.0\n", headers, b"v1.0.0\n")  # If-Match: the ETag read with it
    assert read_blob(blobs, key) == b"v2.0.0\n"
    props = blob_props(blobs, key)
    assert props.content_settings.content_type == headers["Content-Type"]
    assert props.content_settings.cache_control == headers["Cache-Control"]


def test_an_etag_that_changed_between_read_and_write_is_refused(
    dest: AzureBlobDestination, blobs: BlobServiceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer between the conditional read and the write: the service answers 412."""
    key, headers = key_of(Kind.VERSION), headers_of(Kind.VERSION)
    dest.replace_if(key, b"v1.0.0\n", headers, None)
    from kmrelease.destinations import azure_guard

    original_upload = azure_guard.BlobClient.upload_blob
    raced = {"done": False}

    def upload(self: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
        if not raced["done"] and kwargs.get("etag"):
            raced["done"] = True
            original_upload(self, b"v7.7.7\n", overwrite=True)  # someone else, unconditionally
        return original_upload(self, data, *args, **kwargs)

    monkeypatch.setattr(azure_guard.BlobClient, "upload_blob", upload)
    with pytest.raises(KmError, match=r"changed by another publisher meanwhile \(now 'v7\.7\.7'\)"):
        dest.replace_if(key, b"v2.0.0\n", headers, b"v1.0.0\n")
    assert read_blob(blobs, key) == b"v7.7.7\n"
