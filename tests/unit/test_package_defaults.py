"""Package names default from the project's own configuration, never from km's (issue 9).

``tests/fixtures/hello`` without its ``[packages]`` table: every name comes from its
binary (``hello``), its GitHub repository (``acme/hello``) and its public base URL
(``https://get.hello.test``). This repository's table holds km's names, which stay exactly
what its packages always said.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from kmrelease.config import load_project
from kmrelease.errors import KmError
from kmrelease.packages import deb, formats
from kmrelease.packages.settings import PackageSettings, debian_name, load_settings
from kmrelease.packages.stage import PUBLISHED_METHODS, VARIANTS
from kmrelease.version import parse_version
from tests.support.releases import ROOT

HELLO = ROOT / "tests" / "fixtures" / "hello"
V = parse_version("v1.0.0")


def hello_without_packages(tmp_path: Path, project: str | None = None) -> Path:
    """A copy of the hello project whose release.toml has no [packages] table (and maybe another
    [project] table)."""
    root = tmp_path / "hello"
    shutil.copytree(HELLO, root)
    config = root / "build" / "release.toml"
    text = config.read_text(encoding="utf-8").split("[packages]", 1)[0]
    if project is not None:
        rest = text.split("[build]", 1)[1]
        text = f"{project}\n[build]{rest}"
    config.write_text(text, encoding="utf-8")
    return root


def test_this_repository_keeps_kms_names() -> None:
    assert load_settings(load_project(cwd=ROOT)) == PackageSettings()


def test_another_cli_gets_names_from_its_own_configuration(tmp_path: Path) -> None:
    s = load_settings(load_project(cwd=hello_without_packages(tmp_path)))
    assert (s.binary, s.package, s.formula) == ("hello", "hello", "hello")
    assert s.maintainer == "acme <release@get.hello.test>"
    assert (s.copyright_holder, s.apt_origin, s.apt_label, s.winget_publisher) == ("acme",) * 4
    assert s.keyring_name == "hello-archive-keyring.gpg"
    assert (s.tap_repository, s.scoop_repository) == ("acme/homebrew-tap", "acme/scoop-bucket")
    assert s.winget_identifier == "acme.hello"
    assert (s.homepage, s.base_url) == ("https://github.com/acme/hello", "https://get.hello.test")
    assert "hello" in s.summary and "acme/hello" in s.long_description
    values = json.dumps(dataclasses.asdict(s)).lower()
    assert "kilometers" not in values and '"km' not in values, values


def test_the_rendered_packages_name_only_the_project(tmp_path: Path) -> None:
    s = load_settings(load_project(cwd=hello_without_packages(tmp_path)))
    builds = [
        formats.PackageBuild(t, v.method, f"{i:064x}", "hello")
        for i, (v, t) in enumerate((v, t) for v in VARIANTS for t in v.targets)
        if v.method in PUBLISHED_METHODS
    ]
    binary = tmp_path / "hello-linux-amd64"
    binary.write_bytes(b"\0" * 100)
    spec = deb.DebSpec(s, "1.0.0", "amd64", 1767225600, str(V))
    rendered = [
        formats.homebrew_formula(s, V, builds),
        formats.scoop_manifest(s, V, builds),
        *formats.winget_manifests(s, V, builds, "2026-01-01").values(),
        deb.control(spec, binary).dump(),
        deb.copyright_text(spec),
        spec.filename,
    ]
    for text in rendered:
        assert "kilometers" not in text.lower() and "km-" not in text, text
    assert "class Hello < Formula" in rendered[0]
    assert spec.filename == "hello_1.0.0_amd64.deb"
    assert "Maintainer: acme <release@get.hello.test>" in rendered[-3]


def test_packages_table_still_overrides_each_default() -> None:
    s = load_settings(load_project(cwd=HELLO))
    assert s.winget_identifier == "Acme.hello" and s.maintainer == "Acme <release@get.hello.test>"


def test_no_public_base_url_is_one_line(tmp_path: Path) -> None:
    root = hello_without_packages(tmp_path, project='[project]\ngithub_repository = "acme/hello"\n')
    with pytest.raises(KmError, match=r"\[project\] public_base_url is empty: the packages point at"):
        load_settings(load_project(cwd=root))


def test_a_packages_base_url_stands_in_for_the_public_one(tmp_path: Path) -> None:
    root = hello_without_packages(tmp_path, project='[project]\ngithub_repository = "acme/hello"\n')
    config = root / "build" / "release.toml"
    config.write_text(
        config.read_text() + '\n[packages]\nbase_url = "https://dl.hello.test/"\n', encoding="utf-8"
    )
    s = load_settings(load_project(cwd=root))
    assert s.base_url == "https://dl.hello.test" and s.maintainer == "acme <release@dl.hello.test>"


@pytest.mark.parametrize(
    ("name", "binary", "want"),
    [("kilometers-cli", "km", "kilometers-cli"), ("My_Tool", "mt", "my-tool"), ("x", "hello", "hello")],
)
def test_debian_package_names(name: str, binary: str, want: str) -> None:
    assert debian_name(name, binary) == want
