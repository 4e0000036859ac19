"""The URL-space table against SPEC §5 and §6, written out here on purpose as the contract."""

from __future__ import annotations

import pytest

from kmrelease import urlspace
from kmrelease.urlspace import Kind, public_path, purge_paths, resolve

SPEC = [
    ("/", "install/install.sh", "text/plain; charset=utf-8", "public, max-age=600"),
    ("/install.sh", "install/install.sh", "text/plain; charset=utf-8", "public, max-age=600"),
    ("/install/install.sh", "install/install.sh", "text/plain; charset=utf-8", "public, max-age=600"),
    ("/install.ps1", "install/install.ps1", "text/plain; charset=utf-8", "public, max-age=600"),
    ("/install/install.ps1", "install/install.ps1", "text/plain; charset=utf-8", "public, max-age=600"),
    ("/version", "meta/version", "text/plain; charset=utf-8", "public, max-age=300"),
    ("/health", "meta/health", "application/json", "no-cache"),
    (
        "/releases/v1.2.3/km-linux-amd64",
        "releases/v1.2.3/km-linux-amd64",
        "application/octet-stream",
        "public, max-age=86400, immutable",
    ),
    (
        "/releases/v1.2.3/km-windows-arm64.exe.sha256",
        "releases/v1.2.3/km-windows-arm64.exe.sha256",
        "text/plain; charset=utf-8",
        "public, max-age=86400, immutable",
    ),
    (
        "/releases/v1.2.0-rc.1/SHA256SUMS",
        "releases/v1.2.0-rc.1/SHA256SUMS",
        "text/plain; charset=utf-8",
        "public, max-age=86400, immutable",
    ),
    (
        "/releases/v1.2.3/manifest.json",
        "releases/v1.2.3/manifest.json",
        "application/json",
        "public, max-age=86400, immutable",
    ),
    (
        "/releases/latest/km-darwin-arm64",
        "releases/latest/km-darwin-arm64",
        "application/octet-stream",
        "public, max-age=86400",
    ),
    (
        "/releases/latest/manifest.json",
        "releases/latest/manifest.json",
        "application/json",
        "public, max-age=86400",
    ),
    (  # SPEC §14: the APT repository
        "/apt/pool/main/k/kilometers-cli/kilometers-cli_1.3.0~rc.1_arm64.deb",
        "apt/pool/main/k/kilometers-cli/kilometers-cli_1.3.0~rc.1_arm64.deb",
        "application/vnd.debian.binary-package",
        "public, max-age=86400, immutable",
    ),
    (
        "/apt/dists/stable/InRelease",
        "apt/dists/stable/InRelease",
        "text/plain; charset=utf-8",
        "public, max-age=300",
    ),
    (
        "/apt/dists/stable/Release.gpg",
        "apt/dists/stable/Release.gpg",
        "application/pgp-signature",
        "public, max-age=300",
    ),
    (
        "/apt/dists/unstable/main/binary-amd64/Packages.gz",
        "apt/dists/unstable/main/binary-amd64/Packages.gz",
        "application/gzip",
        "public, max-age=300",
    ),
    (
        "/apt/kilometers-archive-keyring.gpg",
        "apt/kilometers-archive-keyring.gpg",
        "application/pgp-keys",
        "public, max-age=300",
    ),
]


@pytest.mark.parametrize(("path", "key", "ctype", "cache"), SPEC)
def test_routes_match_spec(path: str, key: str, ctype: str, cache: str) -> None:
    r = resolve(path)
    assert r is not None
    assert r.key == key
    assert r.headers == {"Content-Type": ctype, "Cache-Control": cache}


@pytest.mark.parametrize(
    "path",
    [
        "/releases/../meta/version",
        "/releases/v1.0.0/../../x",
        "/releases/v1.0.0/.hidden",
        "/releases/v1.0.0/",
        "/releases/latest",
        "/meta/version",
        "/install/",
        "/install/other.sh",
        "/index.html",
        "/releases/1.0/x",
        "/version/",
        "//version",
        "/apt/pool/../meta/version",
        "/apt/dists/stable/../../meta/health",
        "/apt/dists/.hidden",
        "/apt/dists//x",
        "/apt/pool/",
        "/apt/other.gpg",
    ],
)
def test_other_paths_are_not_served(path: str) -> None:
    assert resolve(path) is None


def test_purge_paths_are_spec_section_6() -> None:
    assert sorted(purge_paths()) == sorted(
        [
            "/",
            "/install.sh",
            "/install.ps1",
            "/install/*",
            "/version",
            "/health",
            "/releases/latest/*",
            "/apt/dists/*",
            "/keys/*",
        ]
    )


def test_public_path_inverts_resolve() -> None:
    for obj in urlspace.OBJECTS:
        key = obj.key.format(version="v1.2.3", file="km-linux-amd64", path="dists/stable/InRelease")
        path = public_path(key)
        resolved = resolve(path)
        assert resolved is not None and resolved.key == key
    assert public_path("install/install.sh") == "/install/install.sh"


def test_every_kind_has_one_object_class_and_a_route() -> None:
    assert {o.kind for o in urlspace.OBJECTS} == set(Kind)
    assert {r.kind for r in urlspace.ROUTES} == set(Kind)
    assert urlspace.CONTAINERS == ("install", "meta", "releases", "apt", "keys")


def test_release_keys_are_served_with_short_caching() -> None:
    """SPEC §13: /keys/allowed_signers and /keys/release-keys.pem, public, max-age=300."""
    for path, key in (
        ("/keys/allowed_signers", "keys/allowed_signers"),
        ("/keys/release-keys.pem", "keys/release-keys.pem"),
    ):
        found = resolve(path)
        assert found is not None and found.key == key
        assert found.headers == {
            "Content-Type": "text/plain; charset=utf-8",
            "Cache-Control": "public, max-age=300",
        }
    assert resolve("/keys/other") is None
    assert urlspace.content_type_for("SHA256SUMS.sig").startswith("text/plain")
    assert urlspace.content_type_for("SHA256SUMS.p256") == "application/octet-stream"
