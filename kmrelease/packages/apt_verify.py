"""``inv verify`` of the APT repository through HTTP: the version's packages are in the signed
index of each of its suites, with the hashes ``SHA256SUMS`` gives them.

The chain checked: ``InRelease`` lists ``main/binary-<arch>/Packages`` with its SHA-256, that
file has it, and its paragraph for the version names the pool file with the ``.deb``'s
SHA-256 from ``SHA256SUMS``. (The signature itself is apt's to check, with the keyring.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from debian.deb822 import Deb822, Release

from ..version import Version
from .apt import ARCHES, COMPONENT, debs_of, parse_packages, pool_path, suites_for
from .debver import debian_version
from .settings import PackageSettings

Fetch = Callable[[str], bytes | None]  # public path → body, None when it could not be fetched


def check_apt(fetch: Fetch, version: Version, sums: dict[str, str], s: PackageSettings) -> list[str]:
    """Problems with the APT index for ``version`` (none when the release has no .deb)."""
    debs = debs_of(sums)
    if not debs:
        return []
    problems: list[str] = []
    for suite in suites_for(version):
        base = f"/apt/dists/{suite}"
        inrelease = fetch(f"{base}/InRelease")
        if inrelease is None:
            continue  # the fetch reported it
        listed = {
            e["name"]: e["sha256"] for e in Release(inrelease.decode("utf-8", "replace")).get("SHA256", [])
        }
        for arch in ARCHES:
            rel = f"{COMPONENT}/binary-{arch}/Packages"
            body = fetch(f"{base}/{rel}")
            if body is None:
                continue
            if listed.get(rel) != hashlib.sha256(body).hexdigest():
                problems.append(f"{base}/{rel}: its SHA-256 is not the one {base}/InRelease lists")
                continue
            problems += _stanza(
                base, rel, parse_packages(body.decode("utf-8", "replace")), version, arch, sums, s
            )
    return problems


def _stanza(
    base: str,
    rel: str,
    paragraphs: list[Deb822],
    version: Version,
    arch: str,
    sums: dict[str, str],
    s: PackageSettings,
) -> list[str]:
    name = f"{s.package}_{debian_version(version)}_{arch}.deb"
    if name not in sums:
        return []
    mine = [p for p in paragraphs if p.get("Filename") == pool_path(s, name)]
    if not mine:
        return [f"{base}/{rel}: no entry for {name}"]
    if mine[0].get("SHA256") != sums[name]:
        return [f"{base}/{rel}: {name} has SHA-256 {mine[0].get('SHA256')}, SHA256SUMS says {sums[name]}"]
    return []
