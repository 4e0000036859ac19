from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kmrelease.artifacts import Release
from tests.support.releases import build_release, write_scripts


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The free space where the tests wrote, beside the result: a full disk fails tests by the
    hundred (every tmp_path) and is otherwise not named anywhere in the output."""
    for where in (Path(tempfile.gettempdir()), Path(__file__).resolve().parents[1]):
        free = shutil.disk_usage(where).free / 1e9
        terminalreporter.write_line(f"disk: {free:.1f} GB free in {where}")


@pytest.fixture(scope="session")
def dist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dist")


@pytest.fixture(scope="session")
def release_v1(dist_root: Path) -> Release:
    """v1.0.0, all six targets, built for real."""
    return build_release("v1.0.0", dist_root)


@pytest.fixture(scope="session")
def release_v11(dist_root: Path) -> Release:
    """v1.1.0, all six targets."""
    return build_release("v1.1.0", dist_root)


@pytest.fixture(scope="session")
def release_rc(dist_root: Path) -> Release:
    """v1.2.0-rc.1, a pre-release."""
    return build_release("v1.2.0-rc.1", dist_root)


@pytest.fixture
def scripts_dir(tmp_path: Path) -> Path:
    return write_scripts(tmp_path / "scripts")


@pytest.fixture
def copy_dist(tmp_path: Path) -> Iterator[object]:
    """Copy a release's dist directory somewhere it may be damaged."""

    def copy(release: Release) -> Path:
        src = release.files[0].path.parent
        dst = tmp_path / "dist" / src.name
        shutil.copytree(src, dst)
        return dst

    yield copy
