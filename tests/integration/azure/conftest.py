"""Fixtures for the Azure tests: one Azurite per session, emptied before each test."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from kmrelease.artifacts import Release
from kmrelease.destinations.azure import AzureBlobDestination, RetrySettings
from kmrelease.ui import Reporter
from kmrelease.urlspace import CONTAINERS, Kind, key_of
from tests.support import azurite as azurite_mod
from tests.support.fake_release import make_dist, make_scripts

FAST = RetrySettings(
    total=4, initial_backoff=0.05, increment_base=0.1, jitter=0.0, connection_timeout=5, read_timeout=20
)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[azurite_mod.Azurite]:
    server = azurite_mod.start(tmp_path_factory.mktemp("azurite"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def blobs(azurite: azurite_mod.Azurite) -> Iterator[BlobServiceClient]:
    """A raw SDK client for inspection; the account is emptied before each test."""
    service = BlobServiceClient.from_connection_string(azurite.connection_string())
    for c in service.list_containers():
        service.delete_container(c.name)
    yield service


@pytest.fixture
def dest(azurite: azurite_mod.Azurite, blobs: BlobServiceClient) -> AzureBlobDestination:
    return AzureBlobDestination.from_connection_string(azurite.connection_string(), Reporter(), retry=FAST)


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    return make_scripts(tmp_path)


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    return tmp_path / "dist"


@pytest.fixture
def release_of(dist: Path):  # type: ignore[no-untyped-def]
    def make(version: str, **kwargs: object) -> Release:
        return make_dist(dist, version, **kwargs)  # type: ignore[arg-type]

    return make


def blob_props(service: BlobServiceClient, key: str):  # type: ignore[no-untyped-def]
    container, _, name = key.partition("/")
    try:
        return service.get_blob_client(container, name).get_blob_properties()
    except ResourceNotFoundError:
        return None


def read_blob(service: BlobServiceClient, key: str) -> bytes | None:
    container, _, name = key.partition("/")
    try:
        return service.get_blob_client(container, name).download_blob().readall()
    except ResourceNotFoundError:
        return None


def all_blobs(service: BlobServiceClient) -> dict[str, object]:
    out: dict[str, object] = {}
    for c in CONTAINERS:
        cc = service.get_container_client(c)
        if not cc.exists():
            continue
        for b in cc.list_blobs():
            out[f"{c}/{b.name}"] = b
    return out


def assert_consistent(
    service: BlobServiceClient, releases: dict[str, Release], *, latest: bool = True
) -> str | None:
    """SPEC §6's promise: ``meta/version`` never names a version whose blobs are incomplete.

    Returns the version named (or None). Every file of that version is present under
    ``releases/<v>/`` with the right size, MD5 and content; with ``latest`` (a run that
    finished) ``releases/latest/`` mirrors it too. An interrupted promotion may leave
    ``latest/`` half-way while the pointer still names the old version: installers
    resolve ``/version`` first and download from the versioned path, so that is safe.
    """
    raw = read_blob(service, key_of(Kind.VERSION))
    if raw is None:
        return None
    v = raw.decode().strip()
    rel = releases[v]
    keys = [key_of(Kind.VERSIONED, version=v, file=f.name) for f in rel.files]
    if latest:
        keys += [key_of(Kind.LATEST, file=f.name) for f in rel.files]
    for f in rel.files:
        for key in keys:
            if not key.endswith("/" + f.name):
                continue
            p = blob_props(service, key)
            assert p is not None, f"meta/version names {v} but {key} is missing"
            assert p.size == f.digest.size, f"{key}: {p.size} bytes, expected {f.digest.size}"
            assert bytes(p.content_settings.content_md5) == f.digest.md5, f"{key}: wrong Content-MD5"
            data = read_blob(service, key)
            assert data is not None and hashlib.sha256(data).hexdigest() == f.digest.sha256, key
    if latest:
        prefix = key_of(Kind.LATEST, file="")
        extra = sorted(
            set(all_blobs(service)) - set(keys) - {k for k in all_blobs(service) if not k.startswith(prefix)}
        )
        assert not extra, f"releases/latest/ holds files {v} does not have: {extra}"
    return v
