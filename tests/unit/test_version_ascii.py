"""Versions are ASCII (issue 14 point 1): every version parser of the engine refuses Unicode
digits and leading zeros, with one grammar (HELPERS.md "Versions")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kmrelease import ci
from kmrelease.errors import KmError
from kmrelease.urlspace import resolve
from kmrelease.version import VERSION_PATTERN, parse_version

HOSTILE = [
    "v1\u0660.0.0",  # Arabic-Indic zero: \d would read it as v10.0.0
    "v1.0.0-\u0661a",  # Arabic-Indic one in a pre-release identifier
    "v\uff11.\uff10.\uff10",  # full-width digits
    "v1.0.\u09e7",  # Bengali one
    "v1.0.0-rc.\u0661",  # a numeric-looking non-ASCII identifier
    "v01.0.0",
    "v1.00.0",
    "v1.0.01",
    "v1.0.0-01",
    "v1.0.0\n",
    "v1.0.0\u200b",  # zero-width space
]
VALID = ["v0.0.0", "v1.2.3", "v10.20.30", "v1.2.0-rc.1", "v1.0.0-0a", "v1.0.0-x-y.7"]


@pytest.mark.parametrize("text", HOSTILE, ids=ascii)
def test_engine_parser_refuses(text: str) -> None:
    with pytest.raises(KmError) as err:
        parse_version(text)
    assert str(err.value).isascii(), "the message echoes the input escaped"


@pytest.mark.parametrize("text", HOSTILE, ids=ascii)
def test_ci_prepare_refuses_tag_and_input(text: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for env in (
        {"GITHUB_EVENT_NAME": "push", "GITHUB_REF_TYPE": "tag", "GITHUB_REF_NAME": text},
        {"GITHUB_EVENT_NAME": "workflow_dispatch", "KM_INPUT_VERSION": text},
    ):
        with pytest.raises(KmError, match="invalid version"):
            ci.prepare(env, str(out))
    assert not out.exists(), "nothing is handed to later jobs"


@pytest.mark.parametrize("text", HOSTILE, ids=ascii)
def test_url_space_does_not_route_a_non_grammar_version(text: str) -> None:
    assert resolve(f"/releases/{text}/km-linux-amd64") is None


@pytest.mark.parametrize("text", VALID)
def test_all_parsers_accept_the_grammar(text: str, tmp_path: Path) -> None:
    assert str(parse_version(text)) == text
    env = {"GITHUB_EVENT_NAME": "push", "GITHUB_REF_TYPE": "tag", "GITHUB_REF_NAME": text}
    assert str(ci.prepare(env, str(tmp_path / "out"))) == text
    got = resolve(f"/releases/{text}/SHA256SUMS")
    assert got is not None and got.key == f"releases/{text}/SHA256SUMS"
    assert re.fullmatch(VERSION_PATTERN, text, re.ASCII)


def test_unicode_digits_do_not_order_as_numbers() -> None:
    assert parse_version("v1.0.0-2") < parse_version("v1.0.0-10")
    assert parse_version("v1.0.0-10") < parse_version("v1.0.0-a")


def test_no_backslash_d_in_the_engine() -> None:
    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(p.relative_to(root))
        for p in sorted((root / "kmrelease").rglob("*.py")) + sorted((root / "tools").rglob("*.py"))
        if re.search(r"\\d(?![a-z])", p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
