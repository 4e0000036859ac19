"""The release-settings block of both install scripts: this repository's values, the keys of build/keys/."""

from __future__ import annotations

import re

from tests.support.install_settings import (
    INSTALL_PS1,
    INSTALL_SH,
    ROOT,
    pems,
    ps1_settings,
    sh_settings,
    ssh_lines,
    with_sh_settings,
)

KEYS = sorted((ROOT / "build" / "keys").glob("*.pem"))


def test_both_scripts_hold_the_same_settings() -> None:
    sh = sh_settings(INSTALL_SH.read_text())
    ps1 = ps1_settings(INSTALL_PS1.read_text())
    assert list(sh.values())[:4] == list(ps1.values())[:4]
    assert sh["BINARY_NAME"] == "km"
    assert sh["GITHUB_REPOSITORY"] == "kilometers-ai/kilometers-cli"
    assert sh["DEFAULT_BASE_URL"] == "https://get.kilometers.ai"
    assert sh["KEY_PRINCIPAL"] == "release@get.kilometers.ai"


def test_trusted_keys_are_the_pems_of_build_keys() -> None:
    """Sorted by file name; none until the signing keys exist."""
    want = [k.read_text().strip() + "\n" for k in KEYS]
    assert pems(sh_settings(INSTALL_SH.read_text())["TRUSTED_KEYS"]) == want
    assert pems(ps1_settings(INSTALL_PS1.read_text())["TrustedKeys"]) == want


def test_trusted_ssh_keys_are_the_same_keys() -> None:
    """install.sh's OpenSSH lines (its allowed_signers, no ssh-keygen -i) are exactly its PEMs."""
    settings = sh_settings(INSTALL_SH.read_text())
    assert settings["TRUSTED_SSH_KEYS"] == ssh_lines(settings["TRUSTED_KEYS"])
    assert settings["TRUSTED_SSH_KEYS"].count("ecdsa-sha2-nistp256 ") == len(KEYS)


def test_settings_are_the_only_literals_for_them() -> None:
    """The rest of each script uses the variables, so a rewritten block is the whole story."""
    for path in (INSTALL_SH, INSTALL_PS1):
        text = path.read_text()
        rest = text[: text.index("# --- release settings")] + text[text.index("# --- end of release") :]
        rest = re.sub(r"<#.*?#>", "", rest, flags=re.S)
        code = "\n".join(line for line in rest.splitlines() if not line.lstrip().startswith("#"))
        assert "kilometers-ai/kilometers-cli" not in code, path
        assert "https://get.kilometers.ai" not in code, path
        assert "km-windows" not in code and "km-${km_os}" not in code, path


def test_rewriting_the_block_keeps_the_script_whole() -> None:
    text = INSTALL_SH.read_text()
    new = with_sh_settings(text, BINARY_NAME="kx", TRUSTED_KEYS="a\nb")
    assert sh_settings(new)["BINARY_NAME"] == "kx" and sh_settings(new)["TRUSTED_KEYS"] == "a\nb"
    assert sh_settings(new)["TRUSTED_SSH_KEYS"] == ""
    original = sh_settings(text)
    assert with_sh_settings(new, BINARY_NAME="km", TRUSTED_KEYS=original["TRUSTED_KEYS"]) == text
