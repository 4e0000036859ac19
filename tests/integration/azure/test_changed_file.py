"""A file that changes while it is uploaded is refused by the service, never published.

A Put Blob carries the MD5 hashed before the upload as its transactional ``Content-MD5``;
the service compares it with the body it received (Azure: 400 ``Md5Mismatch``, Azurite:
400 ``InvalidOperation``) and creates or replaces nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from kmrelease.destinations.azure import AzureBlobDestination, _client_options
from kmrelease.errors import KmError
from kmrelease.hashing import digest_file
from kmrelease.ui import _NullBar
from kmrelease.urlspace import Kind, headers_of, key_of
from tests.integration.azure.conftest import FAST, blob_props, read_blob
from tests.support import azurite as azurite_mod

pytestmark = pytest.mark.azurite
SIZE = 2 * 1024 * 1024 + 77  # one Put Blob, read by the HTTP client in many small pieces


class _RewritingBar(_NullBar):
    """On the first bytes sent, rewrite the end of the file in place (same size, new content)."""

    def __init__(self, path: Path) -> None:
        self.path, self.rewritten = path, False

    def advance(self, amount: int) -> None:
        if not self.rewritten:
            self.rewritten = True
            fd = os.open(self.path, os.O_WRONLY)
            try:
                os.pwrite(fd, b"Z" * 4096, SIZE - 4096)
            finally:
                os.close(fd)


def _binary(tmp_path: Path, name: str = "km-linux-amd64", fill: bytes = b"A") -> Path:
    path = tmp_path / name
    path.write_bytes(fill * SIZE)
    return path


def _strict_destination(azurite: azurite_mod.Azurite, sent: list[dict[str, str]]) -> AzureBlobDestination:
    """Azurite also checks ``x-ms-blob-content-md5`` against the body, Azure does not: drop that
    header from every Put Blob so that, as on Azure, only the transactional Content-MD5 protects."""

    def hook(request: Any) -> None:
        headers = request.http_request.headers
        if request.http_request.method == "PUT" and headers.get("x-ms-blob-type") == "BlockBlob":
            headers.pop("x-ms-blob-content-md5", None)
            sent.append(dict(headers))

    service = BlobServiceClient.from_connection_string(
        azurite.connection_string(), raw_request_hook=hook, **_client_options(FAST)
    )
    return AzureBlobDestination(service, label="Azurite", create_containers=True)


@pytest.mark.parametrize("overwrite", [False, True], ids=["new-version", "overwrite"])
def test_file_changed_mid_upload_is_refused(
    dest: AzureBlobDestination, blobs: BlobServiceClient, tmp_path: Path, overwrite: bool
) -> None:
    key = key_of(Kind.VERSIONED, version="v1.0.0", file="km-linux-amd64")
    headers = headers_of(Kind.VERSIONED, "km-linux-amd64")
    before = None
    if overwrite:  # a blob already there stays as it was
        (tmp_path / "old").mkdir()
        old = _binary(tmp_path / "old", fill=b"O")
        dest.upload(key, old, digest_file(old), headers, overwrite=True, bar=_NullBar())
        before = blob_props(blobs, key).etag
    path = _binary(tmp_path)
    digest = digest_file(path)
    bar = _RewritingBar(path)
    with pytest.raises(KmError) as info:
        dest.upload(key, path, digest, headers, overwrite=overwrite, bar=bar)
    assert bar.rewritten
    assert str(info.value) == f"{path} changed while it was uploaded to {key}: run the release again"
    if overwrite:
        assert blob_props(blobs, key).etag == before
        assert read_blob(blobs, key) == b"O" * SIZE
    else:
        assert blob_props(blobs, key) is None
    # unchanged since, the same upload goes through
    dest.upload(key, path, digest_file(path), headers, overwrite=True, bar=_NullBar())
    assert read_blob(blobs, key) == path.read_bytes()


def test_the_transactional_content_md5_alone_refuses_a_changed_file(
    azurite: azurite_mod.Azurite, blobs: BlobServiceClient, tmp_path: Path
) -> None:
    sent: list[dict[str, str]] = []
    dest = _strict_destination(azurite, sent)
    key = key_of(Kind.VERSIONED, version="v1.0.0", file="km-linux-amd64")
    headers = headers_of(Kind.VERSIONED, "km-linux-amd64")
    path = _binary(tmp_path)
    digest = digest_file(path)
    with pytest.raises(KmError, match="changed while it was uploaded"):
        dest.upload(key, path, digest, headers, overwrite=False, bar=_RewritingBar(path))
    assert blob_props(blobs, key) is None
    assert sent and all(h.get("Content-MD5") for h in sent)
