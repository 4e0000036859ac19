"""One contract for asset names: what the installers ask for is what the engine publishes.

A site is published by the engine itself (build info → ``write_checksums`` →
``load_release`` → ``publish_release`` to a local site; only the binaries are
stand-ins). Then, for every OS/arch each installer can detect:

- install.sh runs with a fake ``uname`` (and ``sysctl``, and the Windows
  environment) first on PATH against that site; the path it requested must be
  an artifact of the published manifest, and the install must succeed;
- install.ps1's asset names and URLs are read out of its syntax tree and
  checked against the same manifest.

The uname values are taken from install.sh's own ``case`` arms, so a pattern
added there is covered here without editing this file.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kmrelease.artifacts import load_release
from kmrelease.build import BuildInfo
from kmrelease.checksums import write_checksums
from kmrelease.destinations.local import LocalSite
from kmrelease.publish import publish_release
from kmrelease.urlspace import Kind, key_of, resolve
from tests.support.install_settings import write_install_sh
from tests.support.releases import PROJECT, context
from tests.support.signed_sites import make_key, sign_site
from tests.support.sites import CdnServer, GitHubServer, dead_url, fake_km

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SH = ROOT / "scripts" / "install.sh"
VERSION = "v3.4.5"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A local site published by the engine; returns (site, manifest.json as published)."""
    root = tmp_path_factory.mktemp("engine")
    dist = root / "dist" / VERSION
    dist.mkdir(parents=True)
    BuildInfo(VERSION, None, "2026-01-01T00:00:00Z", "go-fake").save(dist)
    for t in PROJECT.build.targets:
        binary = dist / PROJECT.build.file_name(t)
        binary.write_bytes(fake_km(VERSION, t.os, t.arch))
        binary.chmod(0o755)
    ctx = context(VERSION, root / "dist", dest=LocalSite(root / "site"))
    write_checksums(ctx)
    site = root / "site"
    publish_release(ctx, load_release(ctx))
    # signed as a release is, with a throwaway key the published install.sh trusts
    key = make_key(root / "key")
    sign_site(site, VERSION, key)
    write_install_sh(site / "install" / "install.sh", TRUSTED_KEYS=key.public_pem.strip())
    manifest_path = site.joinpath(*key_of(Kind.VERSIONED, version=VERSION, file="manifest.json").split("/"))
    return site, json.loads(manifest_path.read_text())


def _case_arms(variable: str) -> dict[str, list[str]]:
    """``km_<variable>`` value → the uname patterns of install.sh's detect_platform that give it."""
    text = INSTALL_SH.read_text()
    body = text[text.index("detect_platform() {") :]
    subject = {"os": '"$_dp_s"', "arch": '"$_dp_m"'}[variable]
    body = body[body.index(f"case {subject} in") :]
    body = body[: body.index("esac")]
    arms: dict[str, list[str]] = {}
    for m in re.finditer(rf"^\s*([^()\n]+)\)\s*km_{variable}=(\w+)\s*;;", body, re.M):
        patterns = [p.strip() for p in m.group(1).split("|")]
        arms.setdefault(m.group(2), []).extend(patterns)
    return arms


def _example(pattern: str) -> str:
    """A uname value matching a case pattern (``MINGW*`` → ``MINGW64_NT-10.0-19045``)."""
    return pattern.replace("*", "64_NT-10.0-19045")


def sh_platforms() -> list[tuple[str, str, dict[str, str], str, str]]:
    """(uname -s, uname -m, extra environment or fake sysctl, os, arch) for everything install.sh detects."""
    oses, arches = _case_arms("os"), _case_arms("arch")
    assert set(oses) == {"linux", "darwin", "windows"} and set(arches) == {"amd64", "arm64"}
    cases = []
    for os_name, os_patterns in oses.items():
        for s in os_patterns:
            for arch, arch_patterns in arches.items():
                for m in arch_patterns:
                    cases.append((_example(s), m, {}, os_name, arch))
    cases.append(("Darwin", "x86_64", {"sysctl.proc_translated": "1"}, "darwin", "arm64"))  # Rosetta 2
    cases.append(("MINGW64_NT-10.0", "x86_64", {"PROCESSOR_ARCHITEW6432": "ARM64"}, "windows", "arm64"))
    return cases


def artifact_for(manifest: dict[str, Any], requested_path: str) -> dict[str, Any]:
    resolved = resolve(requested_path)
    assert resolved is not None and resolved.kind is Kind.VERSIONED, requested_path
    matches = [a for a in manifest["artifacts"] if a["path"] == resolved.key]
    assert matches, f"{requested_path} is not an artifact of the published manifest"
    return matches[0]


@pytest.mark.parametrize(
    "s,m,extra,os_name,arch",
    [pytest.param(*c, id=f"{c[0]}-{c[1]}{'-' + next(iter(c[2])) if c[2] else ''}") for c in sh_platforms()],
)
def test_install_sh_asks_for_published_assets(
    published: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    s: str,
    m: str,
    extra: dict[str, str],
    os_name: str,
    arch: str,
) -> None:
    site, manifest = published
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    (fakes / "uname").write_text(
        f'#!/bin/sh\ncase "$1" in -sm) echo "{s} {m}" ;; -m) echo "{m}" ;; *) echo "{s}" ;; esac\n'
    )
    env = {"PATH": f"{fakes}:{SYSTEM_PATH}", "HOME": str(tmp_path), "NO_COLOR": "1"}
    if "sysctl.proc_translated" in extra:
        (fakes / "sysctl").write_text('#!/bin/sh\n[ "$2" = sysctl.proc_translated ] && echo 1\n')
    else:
        env.update(extra)
    for tool in fakes.iterdir():
        tool.chmod(0o755)
    with CdnServer(site) as cdn:
        env.update(KM_BASE_URL=cdn.url, KM_GITHUB_BASE_URL=dead_url())
        proc = subprocess.run(
            ["sh", str(site / "install" / "install.sh"), "--install-dir", str(tmp_path / "bin")],
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        requested = cdn.paths()
    assert proc.returncode == 0, proc.stderr
    assert requested[0] == "/version"
    binary_path = requested[-1]
    art = artifact_for(manifest, binary_path)
    assert (art["os"], art["arch"]) == (os_name, arch)
    assert requested[-2] == binary_path + ".sha256"
    assert f"km {VERSION} (fake, 2026-01-01T00:00:00Z, {os_name}/{arch})" in proc.stdout


def test_install_sh_github_assets_are_the_release_files(
    published: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """The GitHub Release carries the same file set: the fallback asks for a published name too."""
    site, manifest = published
    with GitHubServer(site) as gh:
        proc = subprocess.run(
            [
                "sh",
                str(site / "install" / "install.sh"),
                "--install-dir",
                str(tmp_path / "bin"),
                "--source",
                "github",
                "--version",
                VERSION,
            ],
            env={"PATH": SYSTEM_PATH, "HOME": str(tmp_path), "KM_GITHUB_BASE_URL": gh.url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        asked = gh.paths()
    assert proc.returncode == 0, proc.stderr
    names = {a["name"] for a in manifest["artifacts"]}
    prefix = f"/kilometers-ai/kilometers-cli/releases/download/{VERSION}/"
    assert all(p.startswith(prefix) for p in asked)
    assert asked[-1].removeprefix(prefix) in names


def test_install_ps1_asks_for_published_assets(published: tuple[Path, dict[str, Any]]) -> None:
    pytest.importorskip("tree_sitter_powershell")
    from tests.unit.test_install_ps1 import arch_map, render, returned_strings

    _, manifest = published
    (asset_template,) = returned_strings("Get-KmAssetName")
    (cdn_template,) = returned_strings("Get-KmCdnUrl")
    gh_versioned, gh_latest = returned_strings("Get-KmGitHubUrl")
    seen = set()
    for runtime_name, arch in arch_map().items():
        asset = render(asset_template, Arch=arch)
        url = render(cdn_template, Base="https://get.kilometers.ai", Version=VERSION, Asset=asset)
        art = artifact_for(manifest, url.removeprefix("https://get.kilometers.ai"))
        assert (art["os"], art["arch"]) == ("windows", arch), runtime_name
        for template in (gh_versioned, gh_latest):
            gh = render(template, Base="https://github.com", Version=VERSION, Asset=asset)
            assert gh.rsplit("/", 1)[-1] == art["name"]
        seen.add(art["name"])
    assert seen == {a["name"] for a in manifest["artifacts"] if a["os"] == "windows"}


def test_every_published_binary_is_reachable_by_an_installer(published: tuple[Path, dict[str, Any]]) -> None:
    _, manifest = published
    detectable = {(os_name, arch) for *_, os_name, arch in sh_platforms()}
    assert {(a["os"], a["arch"]) for a in manifest["artifacts"]} == detectable
