"""Non-Python lint checks, run by ``nox -s lint`` as ``python -m tools.lint all``.

Each check is a function registered in CHECKS; it raises KmError with one line on failure.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from kmrelease.build import go_files
from kmrelease.errors import KmError
from kmrelease.gotool import find_go

ROOT = Path(__file__).resolve().parent.parent

CHECKS: dict[str, Callable[[], None]] = {}


def check(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(fn: Callable[[], None]) -> Callable[[], None]:
        CHECKS[name] = fn
        return fn

    return register


def _run(cmd: list[str], what: str, **kwargs: object) -> str:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    out = (proc.stdout or "") + (proc.stderr or "")
    if proc.returncode != 0:
        sys.stderr.write(out)
        raise KmError(f"{what} failed")
    return str(out)


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise KmError(f"{tool} is not installed (`.ci/run` installs it with apt-get)")
    return path


@check("shellcheck")
def shellcheck() -> None:
    scripts = [
        *sorted(str(p) for p in (ROOT / "scripts").glob("*.sh")),
        str(ROOT / "dev"),
        str(ROOT / ".ci" / "run"),
    ]
    _run([_need("shellcheck"), "-s", "sh", *[s for s in scripts if s.endswith(".sh")]], "shellcheck (sh)")
    _run(
        [_need("shellcheck"), "-s", "bash", *[s for s in scripts if not s.endswith(".sh")]],
        "shellcheck (bash)",
    )


@check("go")
def go_checks() -> None:
    go = find_go()
    env = go.env(CGO_ENABLED="0")
    out = _run([str(go.gofmt), "-l", *map(str, go_files(ROOT, tests=True))], "gofmt")
    if out.strip():
        raise KmError(f"gofmt would reformat: {' '.join(out.split())}")
    _run([str(go.go), "vet", "./..."], "go vet", env=env)


@check("terraform")
def terraform_checks() -> None:
    """HCL parse + the URL-space cross-check, terraform fmt/validate when possible, checkov."""
    from kmrelease import infra

    from . import tfcheck

    problems = tfcheck.check_terraform()
    if problems:
        sys.stderr.write("".join(f"  {p}\n" for p in problems))
        raise KmError(f"terraform/ disagrees with kmrelease.urlspace ({len(problems)} problems)")
    tf = shutil.which("terraform")
    env = infra.terraform_env()
    if tf:
        _run([tf, "fmt", "-check", "-recursive", "terraform"], "terraform fmt -check", env=env)
        if tfcheck.providers_installed():
            _run(
                infra.terraform_command("validate", "-no-color", terraform=tf), "terraform validate", env=env
            )
        else:
            print(
                "lint terraform: validate skipped (providers not installed: terraform init)", file=sys.stderr
            )
    else:
        print("lint terraform: fmt and validate skipped (no terraform binary)", file=sys.stderr)
    checkov = tfcheck.checkov_binary()
    _run([str(checkov), "-d", "terraform", "--skip-download", "--quiet", "--compact"], "checkov")


@check("workflows")
def workflow_checks() -> None:
    """zizmor (offline audits) and actionlint on .github/workflows."""
    from . import ci_tools as ci

    _run([str(ci.zizmor_binary()), "--offline", "--no-progress", ".github/workflows"], "zizmor")
    _run([str(ci.actionlint_binary()), "-no-color"], "actionlint")


def powershell_parse_errors(source: bytes) -> list[str]:
    """``line:col: snippet`` for every ERROR or MISSING node tree-sitter-powershell finds."""
    try:
        import tree_sitter
        import tree_sitter_powershell
    except ImportError:
        raise KmError(
            "tree-sitter and tree-sitter-powershell are not installed (pip install -e .[lint])"
        ) from None
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    tree = parser.parse(source)
    problems: list[str] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            what = f"missing {node.type}" if node.is_missing else "syntax error"
            snippet = source[node.start_byte : node.end_byte].decode("utf-8", "replace").splitlines()
            problems.append(f"{node.start_point[0] + 1}:{node.start_point[1] + 1}: {what} {snippet[:1]}")
        stack.extend(reversed(node.children))
    return sorted(problems, key=lambda p: tuple(int(x) for x in p.split(":")[:2]))


@check("powershell")
def powershell() -> None:
    """Parse scripts/*.ps1 with tree-sitter-powershell (PowerShell itself cannot run here)."""
    for script in sorted((ROOT / "scripts").glob("*.ps1")):
        problems = powershell_parse_errors(script.read_bytes())
        if problems:
            for p in problems:
                print(f"{script.relative_to(ROOT)}:{p}", file=sys.stderr)
            raise KmError(f"{script.relative_to(ROOT)}: {len(problems)} parse error(s)")


def main(argv: list[str]) -> int:
    names = list(CHECKS) if not argv or argv == ["all"] else argv
    failed = 0
    for name in names:
        if name not in CHECKS:
            print(f"unknown check {name!r}: one of {', '.join(CHECKS)}", file=sys.stderr)
            return 2
        try:
            CHECKS[name]()
            print(f"lint {name}: ok", file=sys.stderr)
        except KmError as exc:
            print(f"lint {name}: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
