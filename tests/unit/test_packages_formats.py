"""Debian versions, the Homebrew formula, the Scoop manifest and the winget manifests."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from kmrelease.matrix import Target
from kmrelease.packages import formats
from kmrelease.packages.debver import debian_version
from kmrelease.packages.settings import PackageSettings
from kmrelease.packages.stage import PUBLISHED_METHODS, VARIANTS
from kmrelease.version import parse_version

S = PackageSettings()
V = parse_version("v1.2.3")


def _builds() -> list[formats.PackageBuild]:
    out = []
    for v in VARIANTS:
        if v.method in PUBLISHED_METHODS:
            for t in v.targets:
                out.append(formats.PackageBuild(t, v.method, f"{len(out):x}" * 64))
    return [formats.PackageBuild(b.target, b.method, b.sha256[:64]) for b in out]


@pytest.mark.parametrize(
    ("version", "debver"),
    [("v1.2.3", "1.2.3"), ("v1.3.0-rc.1", "1.3.0~rc.1"), ("v2.0.0-alpha-2.1", "2.0.0~alpha+2.1")],
)
def test_debian_version(version: str, debver: str) -> None:
    assert debian_version(parse_version(version)) == debver


ORDERED = ["v1.0.0-1", "v1.0.0-alpha", "v1.0.0-alpha.1", "v1.0.0-rc.2", "v1.0.0-rc.10", "v1.0.0", "v1.0.1"]


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed")
def test_debian_versions_sort_like_the_release_versions() -> None:
    debs = [debian_version(parse_version(v)) for v in ORDERED]
    assert sorted(ORDERED, key=parse_version) == ORDERED
    for older, newer in itertools.pairwise(debs):
        proc = subprocess.run(["dpkg", "--compare-versions", older, "lt", newer])
        assert proc.returncode == 0, (older, newer)


def test_formula_points_at_the_brew_builds_and_parses(tmp_path: Path) -> None:
    builds = _builds()
    rb = formats.homebrew_formula(S, V, builds)
    assert "class Km < Formula" in rb and 'version "1.2.3"' in rb
    pairs = re.findall(r'url "([^"]+)"\n\s+sha256 "([0-9a-f]{64})"', rb)
    base = "https://get.kilometers.ai/releases/v1.2.3/"
    want = {(base + b.name, b.sha256) for b in builds if b.method == "brew"}
    assert set(pairs) == want and len(pairs) == 4
    assert 'bin.install Dir["km-*-brew"].fetch(0) => "km"' in rb
    assert 'shell_output("#{bin}/km --version")' in rb
    if shutil.which("ruby"):
        (tmp_path / "km.rb").write_text(rb)
        proc = subprocess.run(["ruby", "-c", str(tmp_path / "km.rb")], capture_output=True, text=True)
        assert proc.returncode == 0 and "Syntax OK" in proc.stdout, proc.stderr


def test_formula_class_names() -> None:
    assert formats.formula_class("km") == "Km"
    assert formats.formula_class("my-tool") == "MyTool"


def test_scoop_manifest() -> None:
    doc = json.loads(formats.scoop_manifest(S, V, _builds()))
    assert doc["version"] == "1.2.3" and doc["bin"] == "km.exe"
    assert set(doc["architecture"]) == {"64bit", "arm64"}
    x64 = doc["architecture"]["64bit"]
    assert x64["url"] == "https://get.kilometers.ai/releases/v1.2.3/km-windows-amd64-scoop.exe#/km.exe"
    assert re.fullmatch("[0-9a-f]{64}", x64["hash"])
    assert doc["checkver"]["url"] == "https://get.kilometers.ai/version"
    rx = doc["checkver"]["regex"]
    assert re.search(rx, "v1.2.4\n", re.M).group(1) == "1.2.4"  # type: ignore[union-attr]
    assert re.search(rx, "v1.3.0-rc.1\n", re.M) is None  # pre-releases are not offered
    auto = doc["autoupdate"]["architecture"]["arm64"]
    assert auto["url"].endswith("/releases/v$version/km-windows-arm64-scoop.exe#/km.exe")
    assert auto["hash"]["url"].endswith("/releases/v$version/km-windows-arm64-scoop.exe.sha256")


# The required properties of the winget manifest schemas (1.9.0), and the patterns that matter.
WINGET_REQUIRED = {
    "version": ["PackageIdentifier", "PackageVersion", "DefaultLocale", "ManifestType", "ManifestVersion"],
    "defaultLocale": [
        "PackageIdentifier", "PackageVersion", "PackageLocale", "Publisher", "PackageName",
        "License", "ShortDescription", "ManifestType", "ManifestVersion",
    ],
    "installer": ["PackageIdentifier", "PackageVersion", "Installers", "ManifestType", "ManifestVersion"],
}  # fmt: skip
IDENT_RE = r'^[^\.\s\\/:\*\?"<>\|\x01-\x1f]{1,32}(\.[^\.\s\\/:\*\?"<>\|\x01-\x1f]{1,32}){1,7}$'


def validate_winget(docs: dict[str, str]) -> dict[str, dict[str, object]]:
    """Check the manifests against the required fields of their schema; return them by type."""
    by_type: dict[str, dict[str, object]] = {}
    for name, text in docs.items():
        assert text.splitlines()[1].startswith(
            "# yaml-language-server: $schema=https://aka.ms/winget-manifest."
        )
        doc = yaml.safe_load(text)
        kind = doc["ManifestType"]
        assert name.endswith(".yaml")
        missing = [k for k in WINGET_REQUIRED[kind] if k not in doc]
        assert not missing, (name, missing)
        assert re.fullmatch(r"1\.[0-9]+\.0", doc["ManifestVersion"])
        assert re.match(IDENT_RE, doc["PackageIdentifier"])
        assert re.fullmatch(r"[^\\/:\*\?\"<>\|\x01-\x1f]{1,128}", doc["PackageVersion"])
        by_type[kind] = doc
    assert set(by_type) == set(WINGET_REQUIRED)
    for inst in by_type["installer"]["Installers"]:  # type: ignore[attr-defined]
        assert {"Architecture", "InstallerUrl", "InstallerSha256"} <= set(inst)
        assert re.fullmatch("[A-F0-9]{64}", inst["InstallerSha256"])
    return by_type


def test_winget_manifests_have_their_schema_fields() -> None:
    docs = formats.winget_manifests(S, V, _builds(), "2026-12-01T10:00:00Z")
    assert sorted(docs) == sorted(formats.winget_file_names(S).values())
    by_type = validate_winget(docs)
    inst = by_type["installer"]
    assert inst["InstallerType"] == "portable" and inst["Commands"] == ["km"]
    assert inst["ReleaseDate"] == "2026-12-01"
    arches = {i["Architecture"]: i["InstallerUrl"] for i in inst["Installers"]}  # type: ignore[attr-defined]
    assert arches == {
        "x64": "https://get.kilometers.ai/releases/v1.2.3/km-windows-amd64-winget.exe",
        "arm64": "https://get.kilometers.ai/releases/v1.2.3/km-windows-arm64-winget.exe",
    }


def test_published_names() -> None:
    from kmrelease.packages.variants import published_name

    assert published_name(Target("darwin", "arm64"), "brew") == "km-darwin-arm64-brew"
    assert published_name(Target("windows", "amd64"), "scoop") == "km-windows-amd64-scoop.exe"
