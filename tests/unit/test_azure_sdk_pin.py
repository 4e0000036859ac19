"""The Azure upload streams Put Blob through the SDK's generated client (private API): the SDK is
pinned exactly, and this test says what moved when the installed SDK is not the pinned one."""

from __future__ import annotations

import inspect
import re
import tomllib
from importlib.metadata import version

import pytest

from tests.support.releases import ROOT

pytest.importorskip("azure.storage.blob")

PRIVATE_USE = "kmrelease/destinations/azure.py (_put_blob, _upload_op)"


def pinned() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["azure"]
    m = next(
        re.fullmatch(r"azure-storage-blob==([0-9.]+)", d) for d in deps if d.startswith("azure-storage-blob")
    )
    assert m is not None, "azure-storage-blob must be pinned with == in the azure extra"
    return m.group(1)


def test_the_installed_sdk_is_the_pinned_one() -> None:
    installed = version("azure-storage-blob")
    assert installed == pinned(), (
        f"azure-storage-blob {installed} is installed, the engine is pinned to {pinned()}: {PRIVATE_USE} "
        "uses its private generated client; check the names below before moving the pin"
    )


def test_the_private_names_the_upload_uses_are_there() -> None:
    try:
        from azure.storage.blob import BlobClient
        from azure.storage.blob._generated.models import BlobHTTPHeaders, ModifiedAccessConditions
        from azure.storage.blob._shared.response_handlers import process_storage_error
    except ImportError as exc:
        pytest.fail(f"the SDK moved a private module {PRIVATE_USE} imports: {exc}")
    client = BlobClient("http://127.0.0.1:1/acct", "c", "b")
    upload = client._client.block_blob.upload
    params = set(inspect.signature(upload).parameters)
    wanted = {
        "content_length",
        "body",
        "transactional_content_md5",
        "blob_http_headers",
        "modified_access_conditions",
    }
    assert wanted <= params, f"block_blob.upload lost {sorted(wanted - params)}: {PRIVATE_USE}"
    assert {"blob_content_type", "blob_cache_control", "blob_content_md5"} <= set(
        inspect.signature(BlobHTTPHeaders).parameters
    ), f"BlobHTTPHeaders changed: {PRIVATE_USE}"
    assert "if_none_match" in inspect.signature(ModifiedAccessConditions).parameters
    assert callable(process_storage_error)
