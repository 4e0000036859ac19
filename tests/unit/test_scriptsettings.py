"""The release-settings block of the install scripts: read strictly, rewritten with the project's names."""

from __future__ import annotations

import subprocess

import pytest

from kmrelease.config import BuildConfig
from kmrelease.errors import KmError
from kmrelease.scriptsettings import BEGIN, END, parse, render_for
from tests.support.releases import PROJECT, ROOT, project_at

SH = (ROOT / "scripts" / "install.sh").read_text()
PS1 = (ROOT / "scripts" / "install.ps1").read_text()
HELLO = project_at(
    ROOT,
    github_repository="acme/hello",
    public_base_url="https://get.hello.test",
    build=BuildConfig(binary="hello"),
)
PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1wbWD0pmQABV8m7hcIHM3JhN5QKB\n"
    "LnBs1E0o35wCC2/0cYfMA2tWBozB0y8cH4xcnTIc27BKcHfKqvOWkcY6NA==\n"
    "-----END PUBLIC KEY-----"
)
SSH = (  # the same key in OpenSSH form
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNcG1g9KZkAAVf"
    "Ju4XCBzNyYTeUCgS5wbNRNKN+cAgtv9HGHzANrVgaMwdMvHB+MXJ0yHNuwSnB3yqrzlpHGOjQ="
)


@pytest.mark.parametrize(("text", "name"), [(SH, "install.sh"), (PS1, "install.ps1")])
def test_this_repository_publishes_its_scripts_unchanged(text: str, name: str) -> None:
    settings = parse(text, name).settings
    assert (settings.binary_name, settings.github_repository) == ("km", "kilometers-ai/kilometers-cli")
    assert settings.default_base_url == PROJECT.public_base_url
    assert settings.key_principal == "release@get.kilometers.ai"
    assert render_for(PROJECT, text, name) == text


@pytest.mark.parametrize(("text", "name"), [(SH, "install.sh"), (PS1, "install.ps1")])
def test_another_project_gets_its_own_names(text: str, name: str) -> None:
    out = render_for(HELLO, text, name, PEM)
    s = parse(out, name).settings
    assert (s.binary_name, s.github_repository, s.default_base_url, s.key_principal) == (
        "hello",
        "acme/hello",
        "https://get.hello.test",
        "release@get.hello.test",
    )
    assert s.trusted_keys == PEM
    before, after = text.split(BEGIN)[0], out.split(BEGIN)[0]
    assert before == after and text.split(END)[1] == out.split(END)[1]  # nothing else changes
    assert render_for(HELLO, out, name, PEM) == out  # idempotent


def test_rendered_sh_still_parses_and_holds_the_values() -> None:
    out = render_for(HELLO, SH, "install.sh", PEM)
    block = out[out.index(BEGIN) : out.index(END)]
    proc = subprocess.run(
        [
            "sh",
            "-c",
            block + '\nprintf "%s|%s|%s|%s\\n" "$BINARY_NAME" "$DEFAULT_BASE_URL"'
            ' "$TRUSTED_KEYS" "$TRUSTED_SSH_KEYS"',
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert proc.stdout == f"hello|https://get.hello.test|{PEM}|{SSH}\n", proc.stderr


def test_keys_that_are_not_p256_cannot_be_published() -> None:
    garbage = "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----"
    with pytest.raises(KmError, match=r"ECDSA P-256 public keys"):
        render_for(HELLO, SH, "install.sh", garbage)


def test_keys_are_kept_unless_given() -> None:
    with_keys = render_for(PROJECT, SH, "install.sh", PEM)
    assert parse(render_for(HELLO, with_keys, "install.sh"), "install.sh").settings.trusted_keys == PEM


BLOCK_SH = (
    f'{BEGIN}\nBINARY_NAME="km"\nGITHUB_REPOSITORY="a/b"\nDEFAULT_BASE_URL="https://x.test"\n'
    f'KEY_PRINCIPAL="release@x.test"\nTRUSTED_KEYS=""\nTRUSTED_SSH_KEYS=""\n{END}\n'
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("#!/bin/sh\necho no block\n", "need exactly one block"),
        (BLOCK_SH + BLOCK_SH, "need exactly one block"),
        (BLOCK_SH.replace('BINARY_NAME="km"\n', ""), r"line 2: expected BINARY_NAME"),
        (BLOCK_SH.replace('BINARY_NAME="km"', "BINARY_NAME=km"), r"line 2: expected BINARY_NAME"),
        (BLOCK_SH.replace('"a/b"', '"a/$(id)"'), r"line 3: expected GITHUB_REPOSITORY"),
        (
            BLOCK_SH.replace('TRUSTED_SSH_KEYS=""\n', 'TRUSTED_SSH_KEYS=""\nEXTRA=1\n'),
            r"line 8: unexpected 'EXTRA=1'",
        ),
        (BLOCK_SH.replace('TRUSTED_SSH_KEYS=""\n', ""), r"line 7: expected TRUSTED_SSH_KEYS"),
        (BLOCK_SH.replace('TRUSTED_KEYS=""', 'TRUSTED_KEYS="abc'), r"TRUSTED_KEYS is never closed"),
        (BLOCK_SH.replace('TRUSTED_KEYS=""', 'TRUSTED_KEYS="$(x)"'), r"TRUSTED_KEYS may hold only PEM text"),
    ],
)
def test_a_block_that_is_not_exactly_the_contract_is_refused(text: str, message: str) -> None:
    with pytest.raises(KmError, match=rf"^install.sh: release settings.*{message}"):
        render_for(PROJECT, text, "install.sh")


def test_a_project_without_a_public_url_cannot_publish_scripts() -> None:
    with pytest.raises(KmError, match=r"\[project\] public_base_url is empty"):
        render_for(project_at(ROOT, public_base_url=""), SH, "install.sh")
