"""The checks of ``[build]`` that need the pinned Go: run before anything is built.

- every target is one ``go tool dist list`` of the pinned Go names (cached per Go
  version under ``<root>/.cache/``) and one whose executable header the engine checks;
- ``main`` is a directory of the module holding a ``main`` package (a quick look at
  the package clauses; ``go list`` decides whenever a file says otherwise).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .config import ProjectConfig
from .errors import KmError
from .gotool import GoToolchain

_PACKAGE_RE = re.compile(rb"^\s*package\s+([A-Za-z_][A-Za-z0-9_]*)", re.ASCII | re.MULTILINE)
_COMMENTS_RE = re.compile(rb"//[^\n]*|/\*.*?\*/", re.DOTALL)


def cache_dir(root: Path) -> Path:
    return root / ".cache" / "kmrelease"


def go_targets(go: GoToolchain, root: Path) -> frozenset[str]:
    """``os/arch`` pairs the pinned Go supports (``go tool dist list``), cached per Go version."""
    cache = cache_dir(root) / f"dist-list-{go.version}.txt"
    try:
        return frozenset(cache.read_text(encoding="utf-8").split())
    except OSError:
        pass
    try:
        proc = subprocess.run(
            [str(go.go), "tool", "dist", "list"], env=go.env(), capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KmError(f"cannot run `go tool dist list`: {exc}") from None
    if proc.returncode != 0 or not proc.stdout.strip():
        raise KmError(f"`go tool dist list` failed: {proc.stderr.strip()[-200:]}")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(proc.stdout, encoding="utf-8")
    except OSError:
        pass  # a read-only checkout: ask Go again next time
    return frozenset(proc.stdout.split())


def check_targets(project: ProjectConfig, go: GoToolchain) -> None:
    supported = go_targets(go, project.root)
    where = f"{project.path}: [build] targets"
    for t in project.build.targets:
        if t.slug not in supported:
            raise KmError(f"{where}: {t.slug} is not a target {go.version} supports (`go tool dist list`)")
        if not t.checkable:
            raise KmError(
                f"{where}: {t.slug} is supported by Go, but the engine checks only linux, darwin and "
                "windows executables for amd64 and arm64"
            )


def _package_names(directory: Path) -> set[str]:
    names: set[str] = set()
    for path in directory.glob("*.go"):
        if path.name.endswith("_test.go") or not path.is_file():
            continue
        head = _COMMENTS_RE.sub(b"", path.read_bytes()[:65536])
        m = _PACKAGE_RE.search(head)
        names.add(m.group(1).decode() if m else "")
    return names


def check_main(project: ProjectConfig, go: GoToolchain) -> None:
    main = project.build.main
    where = f"{project.path}: [build] main {main!r}"
    directory = project.root / main
    if not directory.is_dir():
        raise KmError(f"{where}: no such directory in {project.root}")
    names = _package_names(directory)
    if not names:
        raise KmError(f"{where}: no Go source files in {directory}")
    if names == {"main"}:
        return
    try:
        proc = subprocess.run(
            [str(go.go), "list", "-f", "{{.Name}}", main],
            cwd=project.root,
            env=go.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KmError(f"{where}: cannot run `go list`: {exc}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise KmError(f"{where}: `go list` failed: {last}")
    name = proc.stdout.strip()
    if name != "main":
        raise KmError(f"{where}: is package {name}, not a main package")


def check_build_config(project: ProjectConfig, go: GoToolchain) -> None:
    """Raise one clear error unless ``[build]`` names a main package and targets Go supports."""
    check_targets(project, go)
    check_main(project, go)
