"""Another Go CLI released by configuration alone, by the engine installed (non-editable) elsewhere.

``tests/fixtures/hello`` (its own go.mod, main package ``./cmd``, ``main.version``/
``main.commit``/``main.date``, binary ``hello``, a version line of its own) is copied
outside this checkout; the engine is ``pip install``-ed, not editable, into a fresh
virtual environment; then the project's two-line ``tasks.py`` runs ``inv release``
(six targets, checksums, local publish, verify), ``inv serve``, ``inv verify``, and the
published ``install.sh`` installs ``hello`` and runs it. The Go build cache is the
user's, so a second run compiles nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.releases import ROOT

pytestmark = pytest.mark.slow

FIXTURE = ROOT / "tests" / "fixtures" / "hello"
VERSION = "v1.0.0"
EPOCH = "1767225600"  # 2026-01-01T00:00:00Z: the project is not a git checkout
ENGINE_FILES = ("pyproject.toml", "README.md")


def run(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with the engine installed from a copy of its sources (not editable).

    The engine's dependencies (invoke, the pinned Go...) come from this interpreter's
    site-packages through a ``.pth`` line, so nothing is downloaded; ``kmrelease`` itself
    is only the copy pip installed.
    """
    tmp = tmp_path_factory.mktemp("engine")
    src = tmp / "src"
    src.mkdir()
    for name in ENGINE_FILES:
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "kmrelease", src / "kmrelease", symlinks=False, ignore=ignore)
    env_dir = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(env_dir), "platbase": str(env_dir)}))
    (site / "engine-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    py = env_dir / "bin" / "python"
    pip = [
        str(py),
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
    ]  # the build backend from PyPI, as a user gets it
    run([*pip, str(src)], tmp, dict(os.environ))
    where = run([str(py), "-c", "import kmrelease; print(kmrelease.__file__)"], tmp, dict(os.environ))
    assert where.stdout.startswith(str(site)), where.stdout
    return env_dir


def inv(venv: Path) -> list[str]:
    """``inv`` of the venv (its console script comes with invoke, which the .pth line lends)."""
    return [str(venv / "bin" / "python"), "-m", "invoke"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("elsewhere") / "hello"
    shutil.copytree(FIXTURE, root)
    assert not (root / "scripts").exists()  # the engine's own install scripts are published
    return root


@pytest.fixture(scope="module")
def env(venv: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("KM_", "VIRTUAL_ENV"))}
    return {**keep, "CI": "true", "SOURCE_DATE_EPOCH": EPOCH, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}


@pytest.fixture(scope="module")
def released(venv: Path, project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run([*inv(venv), "release", "--version", VERSION], project, env)


@pytest.fixture(scope="module")
def edge(venv: Path, project: Path, env: dict[str, str], released: object) -> Iterator[str]:
    proc = subprocess.Popen(
        [*inv(venv), "serve", "--port", "0", "--access-log", "off"],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "serving <site> on http://127.0.0.1:<port>/ (Ctrl-C stops)"
        assert " on http://" in line, line + (proc.stderr.read() if proc.stderr else "")
        yield line.split(" on ", 1)[1].split("/ ", 1)[0]
    finally:
        proc.terminate()
        proc.wait(10)


def test_release_builds_the_configured_binaries(
    released: subprocess.CompletedProcess[str], project: Path
) -> None:
    dist = project / "dist" / VERSION
    names = sorted(p.name for p in dist.iterdir() if p.is_file() and not p.name.startswith("."))
    binaries = [f"hello-{o}-{a}{'.exe' if o == 'windows' else ''}" for o in ("linux", "darwin", "windows")
                for a in ("amd64", "arm64")]  # fmt: skip
    signatures = ["SHA256SUMS.p256", "SHA256SUMS.sig"]  # signed with a development key made for it
    assert names == sorted(
        [*binaries, *(b + ".sha256" for b in binaries), "SHA256SUMS", *signatures, "manifest.json"]
    )
    packages = sorted(p.name for p in (dist / "packages").iterdir())
    assert "hello_1.0.0_amd64.deb" in packages and "hello-darwin-arm64-brew" in packages
    assert not [n for n in packages if "kilometers" in n.lower() or n.startswith("km")], packages
    apt_release = next((project / "site").rglob("dists/stable/Release")).read_text()
    assert "Origin: acme\n" in apt_release and "Label: acme\n" in apt_release  # from [project], not km's
    want = "hello v1.0.0 built 2026-01-01T00:00:00Z from none for linux/amd64"
    assert f"hello-linux-amd64: ran natively: {want}" in released.stderr
    assert "verified" in released.stderr
    site = project / "site"
    assert (site / "meta" / "version").read_text() == f"{VERSION}\n"
    published = (site / "install" / "install.sh").read_text()
    assert 'BINARY_NAME="hello"' in published and 'GITHUB_REPOSITORY="acme/hello"' in published
    assert 'DEFAULT_BASE_URL="https://get.hello.test"' in published
    assert '$BinaryName = "hello"' in (site / "install" / "install.ps1").read_text()


def test_serve_verify_and_install(
    venv: Path, project: Path, env: dict[str, str], edge: str, tmp_path: Path
) -> None:
    run([*inv(venv), "verify", "--base-url", edge, "--version", VERSION], project, env)
    bindir = tmp_path / "bin"
    install_env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "KM_BASE_URL": edge,
        "KM_INSTALL_DIR": str(bindir),
        "KM_INSTALL_SOURCE": "cdn",
    }
    install = run(["sh", "-c", f"curl -fsSL {edge}/install.sh | sh"], tmp_path, install_env, timeout=300)
    assert "hello v1.0.0 built 2026-01-01T00:00:00Z from none for linux/amd64" in install.stdout
    hello = run([str(bindir / "hello")], tmp_path, install_env)
    assert hello.stdout == "hello, world\n"


def test_a_second_release_changes_nothing(
    venv: Path, project: Path, env: dict[str, str], released: object
) -> None:
    again = run([*inv(venv), "release", "--version", VERSION], project, env)
    assert "built 0, up to date 6" in again.stderr and "0 uploaded" in again.stderr
