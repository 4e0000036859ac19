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
from tests.support.releases import PROJECT
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
    assert mapping == {"X64": "amd64", "AMD64": "amd64", "Arm64": "arm64"}
    windows = {PROJECT.build.file_name(t) for t in TARGETS if t.os == "windows"}
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
    """`irm | iex` runs in the user's shell (or a caller's script): an `exit` there would end it.

    The gate is the script's own command type (ExternalScript only when this file runs as a
    script), captured at the top level; not $PSCommandPath, which under iex inside a script is
    the caller's path.
    """
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
    assert "$KmRunAsFile" in condition and "$PSCommandPath" not in condition
    (statements,) = [c for c in parse().root_node.children if c.type == "statement_list"]
    top = [text(c) for c in statements.children]
    assert "$KmRunAsFile = ($MyInvocation.MyCommand.CommandType -eq 'ExternalScript')" in top
    code = "\n".join(line.split("#", 1)[0] for line in SOURCE.decode().splitlines())
    assert "$PSCommandPath" not in code


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
        "Confirm-KmRuns $binFile $v $tempDir $keep",
        "$ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($Dir)",
        "$env:PROCESSOR_ARCHITEW6432",
        "$ecdsa.VerifyData($statement, $signature, [System.Security.Cryptography.HashAlgorithmName]::SHA256)",
        '"km-release-$Version`n"',
        "$env:KM_REQUIRE_SIGNATURE",
        "MaximumRedirection = $KmMaxRedirects",
        "OperationTimeoutSeconds",
        "TimeoutSec         = $TimeoutSec",
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
    signature = text(functions()["save-kmrelease"])
    assert "New-KmDownloadError" not in signature and "not retried from another source" in signature


# -- the rules as written (PowerShell cannot run here: these read them out of the parse) ----


def function_text(name: str) -> str:
    return text(functions()[name.lower()])


def string_assignment(variable: str) -> str:
    for n in walk(parse().root_node):
        if n.type == "assignment_expression" and text(n).startswith(f"${variable} ="):
            (literal,) = [s for s in walk(n) if s.type == "verbatim_string_characters"]
            return text(literal)[1:-1].replace("''", "'")
    raise AssertionError(f"no ${variable}")


def test_version_grammar_is_the_one_grammar() -> None:
    """$KmVersionPattern (matched with -cmatch, case-sensitive) against the same cases as install.sh."""
    from tests.integration.test_install_hostile import BAD, GOOD

    pattern = re.compile(string_assignment("KmVersionPattern").replace(r"\z", r"\Z"), re.ASCII)
    convert = function_text("ConvertTo-KmVersion")
    assert "-cmatch '^[0-9]'" in convert and "-cnotmatch $KmVersionPattern" in convert
    for good in GOOD:
        assert pattern.match("v" + good.removeprefix("v")), good
    for bad in BAD:
        candidate = bad.strip()  # the script trims (the grammar then sees the rest)
        if re.match(r"[0-9]", candidate):
            candidate = "v" + candidate
        assert not pattern.match(candidate) or bad != bad.strip(), bad


ARCH_CASES = [
    # (PROCESSOR_ARCHITEW6432, PROCESSOR_IDENTIFIER, OSArchitecture or None, PROCESSOR_ARCHITECTURE, want)
    ("AMD64", "Intel64 Family 6", "X64", "x86", "amd64"),  # 32-bit PowerShell on x64 Windows
    ("ARM64", "ARMv8 (64-bit) Family 8", "Arm64", "x86", "arm64"),  # 32-bit PowerShell on Windows on Arm
    (None, "ARMv8 (64-bit) Family 8", "X64", "AMD64", "arm64"),  # x64 PowerShell emulated on Arm
    (None, "Intel64 Family 6", "X64", "AMD64", "amd64"),
    (None, "ARMv8 (64-bit) Family 8", "Arm64", "ARM64", "arm64"),
    (None, "Intel64 Family 6", None, "AMD64", "amd64"),  # no RuntimeInformation (old .NET)
    (None, "Intel64 Family 6", None, "x86", None),  # 32-bit Windows: unsupported
]


@pytest.mark.parametrize("w6432,ident,os_arch,arch,want", ARCH_CASES)
def test_arch_rules(w6432: str | None, ident: str, os_arch: str | None, arch: str, want: str | None) -> None:
    """Get-KmArch's sources in the order it consults them, looked up in $KmArchMap (case-insensitively,
    as PowerShell's hashtables do)."""
    body = function_text("Get-KmArch")
    order = [
        body.index("$env:PROCESSOR_ARCHITEW6432"),
        body.index("$env:PROCESSOR_IDENTIFIER"),
        body.index("RuntimeInformation]::OSArchitecture"),
        body.index("[string]$env:PROCESSOR_ARCHITECTURE"),
    ]
    assert order == sorted(order)
    assert ".StartsWith('ARMv8')" in body and "$arch = 'ARM64'" in body
    mapping = {k.lower(): v for k, v in arch_map().items()}
    chosen = w6432 or ("ARM64" if ident.startswith("ARMv8") else None) or os_arch or arch
    assert mapping.get(chosen.lower()) == want


def test_relative_install_dir_resolves_against_the_powershell_location() -> None:
    body = function_text("Resolve-KmInstallDir")
    assert "GetUnresolvedProviderPathFromPSPath" in body
    assert "GetFullPath" not in SOURCE.decode()
    assert "$InstallDir = Resolve-KmInstallDir $InstallDir" in function_text("Install-Km")


def test_replace_restores_and_first_install_renames_nothing() -> None:
    body = function_text("Install-KmBinary")
    first = body.index("if (-not (Test-Path -LiteralPath $Dest -PathType Leaf))")
    assert first < body.index("Rename-Item -LiteralPath $Dest")
    assert body[first:].split("}", 1)[0].count("Move-Item") == 1 and "return" in body[first:].split("}", 1)[0]
    last_catch = body[body.rindex("} catch {") :]
    assert "Rename-Item -LiteralPath $aside -NewName (Split-Path -Leaf $Dest)" in last_catch
    assert "throw" in last_catch and "back in place" in last_catch


def test_final_url_after_redirects_must_be_https_or_loopback() -> None:
    body = function_text("Invoke-KmDownload")
    assert "$final = Get-KmFinalUrl $response $Url" in body
    assert "if (-not (Test-KmUrl $final))" in body
    final = function_text("Get-KmFinalUrl")
    assert "RequestMessage.RequestUri" in final and "ResponseUri" in final  # PowerShell 7, then 5.1
    assert "$uri.IsLoopback" in function_text("Test-KmUrl")


def test_run_before_replace_comes_before_the_rename() -> None:
    body = function_text("Install-Km")
    assert body.index("Confirm-KmHash") < body.index("Confirm-KmRuns") < body.index("Install-KmBinary")
    runs = function_text("Confirm-KmRuns")
    assert "WaitForExit($KmRunTimeoutSec * 1000)" in runs and "$process.Kill()" in runs


def _ps_bytes(variable: str) -> bytes:
    for n in walk(parse().root_node):
        if n.type == "assignment_expression" and text(n).startswith(f"${variable} ="):
            return bytes(int(h, 16) for h in re.findall(r"0x([0-9A-Fa-f]{2})", text(n)))
    raise AssertionError(f"no ${variable}")


def test_p256_key_prefix_matches_a_real_key(tmp_path: Path) -> None:
    """New-KmEcdsa's SubjectPublicKeyInfo prefix is that of a P-256 key made by openssl."""
    import base64
    import shutil

    if shutil.which("ssh-keygen") is None or shutil.which("openssl") is None:
        pytest.skip("ssh-keygen and openssl are needed")
    from tests.support.signed_sites import make_key

    key = make_key(tmp_path)
    der = base64.b64decode("".join(key.public_pem.strip().splitlines()[1:-1]))
    prefix = _ps_bytes("KmP256SpkiPrefix")
    assert len(der) == 91 and der.startswith(prefix) and len(prefix) == 27
    ecdsa = function_text("New-KmEcdsa")
    assert "$Spki[27..58]" in ecdsa and "$Spki[59..90]" in ecdsa
    assert "0x45, 0x43, 0x53, 0x31, 0x20" in ecdsa  # BCRYPT_ECDSA_PUBLIC_P256_MAGIC "ECS1", 32-byte keys
