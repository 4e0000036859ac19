from __future__ import annotations

import pytest

from kmrelease.config import BuildConfig
from kmrelease.errors import KmError
from kmrelease.matrix import TARGETS
from kmrelease.version import parse_version


def test_matrix_is_spec_section_1() -> None:
    assert [(t.os, t.arch, t.file_name("km")) for t in TARGETS] == [
        ("linux", "amd64", "km-linux-amd64"),
        ("linux", "arm64", "km-linux-arm64"),
        ("darwin", "amd64", "km-darwin-amd64"),
        ("darwin", "arm64", "km-darwin-arm64"),
        ("windows", "amd64", "km-windows-amd64.exe"),
        ("windows", "arm64", "km-windows-arm64.exe"),
    ]


def test_parse_targets_keeps_matrix_order() -> None:
    got = BuildConfig().parse_targets("windows/arm64, linux/amd64")
    assert [t.slug for t in got] == ["linux/amd64", "windows/arm64"]
    assert BuildConfig().parse_targets("") == TARGETS


@pytest.mark.parametrize("spec", ["linux/386", "freebsd/amd64", "linux", "linux/amd64,,"])
def test_unknown_target_refused(spec: str) -> None:
    with pytest.raises(KmError, match="unknown target"):
        BuildConfig().parse_targets(spec)


@pytest.mark.parametrize("text", ["v0.0.0", "v1.2.3", "v1.2.0-rc.1", "v10.20.30-alpha.beta.1", "v1.0.0-0a"])
def test_valid_versions(text: str) -> None:
    assert str(parse_version(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "1.0",
        "v1",
        "v1.0",
        "1.0.0",
        "v1.0.0;rm -rf /",
        "../v1.0.0",
        "",
        "v01.0.0",
        "v1.0.0-",
        "v1.0.0+build",
        "v1.0.0\n",
        "v1.0.0-rc..1",
        "v1.0.0-01",
        "V1.0.0",
        " v1.0.0",
        "v1.0.0/../x",
    ],
)
def test_invalid_versions_say_the_accepted_form(text: str) -> None:
    with pytest.raises(KmError) as err:
        parse_version(text)
    assert "expected vMAJOR.MINOR.PATCH" in str(err.value)
    assert "\n" not in str(err.value)


def test_semver_ordering() -> None:
    order = [
        "v1.0.0-alpha",
        "v1.0.0-alpha.1",
        "v1.0.0-alpha.beta",
        "v1.0.0-beta",
        "v1.0.0-beta.2",
        "v1.0.0-beta.11",
        "v1.0.0-rc.1",
        "v1.0.0",
        "v1.0.1",
        "v1.10.0",
        "v2.0.0",
    ]
    parsed = [parse_version(v) for v in order]
    assert sorted(reversed(parsed)) == parsed
    assert parse_version("v1.2.0-rc.1").is_prerelease
    assert not parse_version("v1.2.0").is_prerelease
