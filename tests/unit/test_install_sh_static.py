"""scripts/install.sh, checked without running it: the shape that makes it safe to pipe."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.install_settings import sh_settings

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SH = ROOT / "scripts" / "install.sh"
TEXT = INSTALL_SH.read_text()


def code_lines() -> list[str]:
    """Non-comment lines, here-documents left out."""
    code = re.sub(r"<<EOF\n.*?\nEOF\n", "<<EOF\n", TEXT, flags=re.S)
    return [line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_main_is_called_on_the_last_line_only() -> None:
    """A download cut off anywhere before the last line defines functions and runs nothing."""
    assert TEXT.endswith('\nmain "$@" || exit 1\n')
    top_level = [
        line
        for line in code_lines()
        if not line.startswith((" ", "\t", "}")) and not re.match(r"^[a-z_0-9]+\(\) \{$", line)
    ]
    # only constants before the call (the release settings' TRUSTED_KEYS spans lines)
    assert top_level[-1] == 'main "$@" || exit 1'
    assert sh_settings(TEXT)
    constants = re.sub(r'^TRUSTED(_SSH)?_KEYS="[^"$`]*"$', "", TEXT, flags=re.M)
    top_level = [line for line in top_level if line in constants.splitlines()]
    assert all(re.match(r'^[A-Z][A-Z0-9_]*="[^"$`]*"$', line) for line in top_level[:-1]), top_level


def test_no_local_and_ascii_only() -> None:
    """ksh93 has no `local` in POSIX functions; yash in the C locale reads ASCII only."""
    assert not any(re.match(r"\s*local\s", line) for line in code_lines())
    assert TEXT.isascii()


def test_exits_only_through_err_help_and_signals() -> None:
    exits = [line.strip() for line in code_lines() if re.search(r"^\s*exit\b|\|\| exit|'exit", line)]
    allowed = {
        "exit 1",
        "exit 0",
        'exit "$1"',
        'main "$@" || exit 1',
    }
    assert set(exits) <= allowed, exits


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_clean() -> None:
    proc = subprocess.run(["shellcheck", "-s", "sh", str(INSTALL_SH)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_every_shell_parses_it() -> None:
    for shell in ("dash", "bash", "zsh", "mksh", "ksh", "yash", "posh"):
        if shutil.which(shell):
            proc = subprocess.run([shell, "-n", str(INSTALL_SH)], capture_output=True, text=True)
            assert proc.returncode == 0, f"{shell}: {proc.stderr}"
