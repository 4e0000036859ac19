"""Tools of this repository's own CI (development only): the workflow linters and the
system packages of the tests. ``python -m tools.ci_tools system-packages [--dry-run]``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kmrelease.errors import KmError

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------
# workflow linters: zizmor (PyPI, `lint` extra) and actionlint (built with the pinned Go)
# ---------------------------------------------------------------------------

ACTIONLINT_MODULE = "github.com/rhysd/actionlint/cmd/actionlint"
ACTIONLINT_VERSION = "v1.7.12"


def actionlint_binary(bin_dir: Path | None = None) -> Path:
    """actionlint ``ACTIONLINT_VERSION`` in ``.cache/tools/bin``, ``go install``-ed when missing.

    Built from source through the Go module proxy with the pinned Go (``GOTOOLCHAIN=local``),
    like every other Go build of the project; no prebuilt binary is downloaded.
    """
    import subprocess
    import sys

    from kmrelease.gotool import find_go

    bin_dir = bin_dir or ROOT / ".cache" / "tools" / "bin"
    exe = bin_dir / ("actionlint.exe" if os.name == "nt" else "actionlint")
    if exe.is_file():
        proc = subprocess.run([str(exe), "-version"], capture_output=True, text=True, check=False)
        if proc.returncode == 0 and proc.stdout.split("\n", 1)[0].strip() == ACTIONLINT_VERSION:
            return exe
    go = find_go()
    bin_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [str(go.go), "install", f"{ACTIONLINT_MODULE}@{ACTIONLINT_VERSION}"],
        env=go.env(GOBIN=str(bin_dir), CGO_ENABLED="0"),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not exe.is_file():
        sys.stderr.write(proc.stdout + proc.stderr)
        raise KmError(f"could not build actionlint {ACTIONLINT_VERSION} with {go.version}")
    return exe


def zizmor_binary() -> Path:
    """zizmor from the running interpreter's environment (the `lint` extra)."""
    import shutil
    import sys

    beside = Path(sys.executable).parent / ("zizmor.exe" if os.name == "nt" else "zizmor")
    if beside.is_file():
        return beside
    found = shutil.which("zizmor")
    if not found:
        raise KmError("zizmor is not installed: pip install -e '.[lint]'")
    return Path(found)


SYSTEM_PACKAGES_FILE = ROOT / "build" / "system-packages.txt"


def system_packages() -> list[str]:
    """The apt packages of ``build/system-packages.txt`` (also read by ``./dev bootstrap``)."""
    lines = SYSTEM_PACKAGES_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def install_system_packages(*, dry_run: bool = False) -> list[str]:
    """apt-get install the packages (with sudo when not root): hosted CI runners."""
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    apt = [*sudo, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
    cmds = [[*apt, "update", "-qq"], [*apt, "install", "-y", "-qq", *system_packages()]]
    for cmd in cmds:
        print("$ " + " ".join(cmd), flush=True)
        if not dry_run and subprocess.run(cmd).returncode != 0:
            raise KmError(f"`{' '.join(cmd[:4])} ...` failed: see the apt output above")
    return system_packages()


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "system-packages":
        print("usage: python -m tools.ci_tools system-packages [--dry-run]", file=sys.stderr)
        return 2
    try:
        install_system_packages(dry_run="--dry-run" in argv[1:])
    except KmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
