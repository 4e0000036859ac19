"""scripts/install.ps1, checked statically: PowerShell cannot run here.

tree-sitter-powershell parses it (the same parse as ``kmrelease.lint powershell``);
the asset names and URLs it builds are read out of the syntax tree and rendered,
and the shape that keeps ``irm | iex`` from closing the user's shell is asserted.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from kmrelease.matrix import TARGETS
from kmrelease.urlspace import Kind, resolve
from tools.lint import powershell_parse_errors

tree_sitter = pytest.importorskip("tree_sitter")
tree_sitter_powershell = pytest.importorskip("tree_sitter_powershell")

ROOT = Path(__file__).resolve().parents[2]
PS1 = ROOT / "scripts" / "install.ps1"
SOURCE = PS1.read_bytes()


def parse(source: bytes = SOURCE) -> Any:
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    return parser.parse(source)


def text(node: Any) -> str:
    return SOURCE[node.start_byte : node.end_byte].decode()


def walk(node: Any) -> list[Any]:
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(reversed(n.children))
    return out


def ancestors(node: Any) -> list[Any]:
    out = []
    while node.parent is not None:
        node = node.parent
        out.append(node)
    return out


def functions() -> dict[str, Any]:
    out = {}
    for n in walk(parse().root_node):
        if n.type == "function_statement":
            name = next(c for c in n.children if c.type == "function_name")
            out[text(name).lower()] = n
    return out


def returned_strings(function: str) -> list[str]:
    """The string literals of a function's ``return`` statements, in order, without quotes."""
    node = functions()[function.lower()]
    out = []
    for n in walk(node):
        if n.type == "flow_control_statement" and n.children[0].type == "return":
            for s in walk(n):
                if s.type in ("expandable_string_literal", "verbatim_string_characters"):
                    out.append(text(s)[1:-1])
    return out


def render(template: str, **values: str) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name == "GithubRepository":
            return "kilometers-ai/kilometers-cli"
        if name == "BinaryName":
            return "km"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, template)


def arch_map() -> dict[str, str]:
    """``$KmArchMap``: RuntimeInformation.OSArchitecture names → release arch names."""
    for n in walk(parse().root_node):
        if n.type == "assignment_expression" and text(n).startswith("$KmArchMap"):
            entries = [e for e in walk(n) if e.type == "hash_entry"]
            out = {}
            for e in entries:
                key = text(e.children[0]).strip("'\"")
                value = text(e.children[2]).strip().strip("'\"")
                out[key] = value
            return out
    raise AssertionError("no $KmArchMap in install.ps1")


def test_parses_without_errors() -> None:
    assert powershell_parse_errors(SOURCE) == []


def test_the_parse_check_finds_errors() -> None:
    assert powershell_parse_errors(b"function f {\n  if ($x -eq 1 {\n    'a'\n}\n")
    assert powershell_parse_errors(b"$x = @(1, 2\n")


def test_arch_map_covers_the_matrix() -> None:
    mapping = arch_map()
    assert mapping == {"X64": "amd64", "Arm64": "arm64"}
    windows = {t.filename for t in TARGETS if t.os == "windows"}
    (template,) = returned_strings("Get-KmAssetName")
    assert {render(template, Arch=a) for a in mapping.values()} == windows


def test_cdn_url_is_the_immutable_versioned_path() -> None:
    (template,) = returned_strings("Get-KmCdnUrl")
    url = render(template, Base="https://get.kilometers.ai", Version="v1.2.3", Asset="km-windows-arm64.exe")
    assert url == "https://get.kilometers.ai/releases/v1.2.3/km-windows-arm64.exe"
    resolved = resolve(url.removeprefix("https://get.kilometers.ai"))
    assert resolved is not None and resolved.kind is Kind.VERSIONED


def test_github_urls_follow_githubs_layout() -> None:
    versioned, latest = returned_strings("Get-KmGitHubUrl")
    args = {"Base": "https://github.com", "Version": "v1.2.3", "Asset": "km-windows-amd64.exe"}
    assert render(versioned, **args) == (
        "https://github.com/kilometers-ai/kilometers-cli/releases/download/v1.2.3/km-windows-amd64.exe"
    )
    assert render(latest, **args) == (
        "https://github.com/kilometers-ai/kilometers-cli/releases/latest/download/km-windows-amd64.exe"
    )


def test_exit_only_when_run_as_a_file() -> None:
    """`irm | iex` runs in the user's shell: an `exit` there would close it."""
    exits = [
        n
        for n in walk(parse().root_node)
        if n.type == "flow_control_statement" and n.children[0].type == "exit"
    ]
    assert len(exits) == 1, [text(e) for e in exits]
    (only,) = exits
    outer = ancestors(only)
    assert not any(a.type == "function_statement" for a in outer)
    guard = next(a for a in outer if a.type == "if_statement")
    condition = text(guard).split("{", 1)[0]
    assert "$PSCommandPath" in condition


def test_errors_are_caught_at_the_top() -> None:
    (statements,) = [c for c in parse().root_node.children if c.type == "statement_list"]
    top = [text(c) for c in statements.children if c.type == "try_statement"]
    assert len(top) == 1 and "Install-Km" in top[0] and "catch" in top[0]
    # session-wide settings stay inside the function, not in the caller's session under iex
    for n in statements.children:
        assert (
            not text(n)
            .lstrip()
            .startswith(("Set-StrictMode", "$ErrorActionPreference", "$ProgressPreference"))
        )


@pytest.mark.parametrize(
    "needle",
    [
        "[System.Runtime.InteropServices.RuntimeInformation]::OSArchitecture",
        "Get-FileHash -Algorithm SHA256",
        "$env:KM_VERSION",
        "$env:KM_INSTALL_DIR",
        "$env:KM_INSTALL_SOURCE",
        "$env:KM_BASE_URL",
        "$env:KM_GITHUB_BASE_URL",
        "$uri.IsLoopback",
        "DoNotExpandEnvironmentNames",
        "-Type ExpandString",
        "checksum mismatch",
        "& $dest --version",
    ],
)
def test_uses(needle: str) -> None:
    assert needle in SOURCE.decode()


def test_never_runs_downloaded_text() -> None:
    code = "\n".join(line.split("#", 1)[0] for line in SOURCE.decode().splitlines() if "irm " not in line)
    assert "Invoke-Expression" not in code and not re.search(r"\|\s*iex\b", code)


def test_mismatch_is_not_a_fallback_kind() -> None:
    """Only download failures carry a kind that falls back; the hash check throws a plain error."""
    fallback = functions()["test-kmfallback"]
    kinds = set(re.findall(r"'(\w+)'", text(fallback)))
    assert kinds == {"missing", "server", "network", "garbled"}
    confirm = text(functions()["confirm-kmhash"])
    assert "New-KmDownloadError" not in confirm and "expected sha256 $want, got $got" in confirm
