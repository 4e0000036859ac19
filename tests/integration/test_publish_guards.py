"""Guards of the local site (issue 14 point 2, issue 13 point 6): a same-size corrupted versioned
file is never promoted, and two publishers at once never leave /version naming an incomplete
version nor lose one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kmrelease.artifacts import Release
from kmrelease.destinations.local import LocalSite
from kmrelease.errors import KmError
from kmrelease.ui import Reporter
from kmrelease.urlspace import Kind, headers_of, key_of
from kmrelease.version import parse_version
from tests.integration.test_tasks_cli import one_error_line
from tests.support.fake_release import make_dist, make_scripts
from tests.support.releases import promote, publish

QUIET = Reporter(quiet=True)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    return make_scripts(tmp_path)


@pytest.fixture
def two(tmp_path: Path, scripts: Path) -> tuple[Path, Release, Release]:
    """A site with v1.0.0 and v1.1.0 published; v1.1.0 current."""
    site = tmp_path / "site"
    v1, v2 = make_dist(tmp_path / "dist", "v1.0.0"), make_dist(tmp_path / "dist", "v1.1.0")
    publish(v1, LocalSite(site), QUIET, scripts=scripts)
    publish(v2, LocalSite(site), QUIET, scripts=scripts)
    return site, v1, v2


def snapshot(site: Path) -> dict[str, bytes]:
    """Every published object (the hidden lock file is not one)."""
    return {
        p.relative_to(site).as_posix(): p.read_bytes()
        for p in sorted(site.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))  # same size


def assert_current_is_complete(site: Path) -> str:
    """/version names a version whose latest/ is exactly its versioned files."""
    v = (site / "meta" / "version").read_text().strip()
    latest = site / "releases" / "latest"
    assert json.loads((latest / "manifest.json").read_text())["version"] == v
    for p in (site / "releases" / v).iterdir():
        assert (latest / p.name).read_bytes() == p.read_bytes(), p.name
    assert json.loads((site / "meta" / "health").read_text())["version"] == v
    return v


# --- content, not sizes -------------------------------------------------------------


@pytest.mark.parametrize("name", ["km-linux-amd64", "km-windows-arm64.exe.sha256", "SHA256SUMS"])
def test_promote_refuses_a_same_size_corrupted_file(two: tuple[Path, Release, Release], name: str) -> None:
    site, _, _ = two
    flip_one_byte(site / "releases" / "v1.0.0" / name)
    before = snapshot(site)
    with pytest.raises(KmError) as err:
        promote(LocalSite(site), parse_version("v1.0.0"), QUIET, scripts=site.parent / "scripts")
    assert "releases/v1.0.0/" in str(err.value)
    assert (
        "nothing was moved" in str(err.value)
        or "disagree" in str(err.value)
        or "not promoted" in str(err.value)
    )
    assert snapshot(site) == before, "nothing moved: /version, latest/, scripts"
    assert (site / "meta" / "version").read_text() == "v1.1.0\n"


def test_promote_refuses_a_corrupted_manifest_that_disagrees(two: tuple[Path, Release, Release]) -> None:
    site, _, _ = two
    manifest = site / "releases" / "v1.0.0" / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["artifacts"][0]["sha256"] = "0" * 64
    manifest.write_text(json.dumps(doc))
    with pytest.raises(KmError, match="disagree"):
        promote(LocalSite(site), parse_version("v1.0.0"), QUIET, scripts=site.parent / "scripts")
    assert (site / "meta" / "version").read_text() == "v1.1.0\n"


def test_release_refuses_a_same_size_corrupted_binary(
    two: tuple[Path, Release, Release], scripts: Path
) -> None:
    site, v1, _ = two
    flip_one_byte(site / "releases" / "v1.0.0" / "km-darwin-arm64")
    before = snapshot(site)
    with pytest.raises(KmError, match="km-darwin-arm64"):
        publish(v1, LocalSite(site), QUIET, promote=True, scripts=scripts)
    assert snapshot(site) == before


class _FlipAfterReadBack(LocalSite):
    """Corrupts a versioned binary after the read-back, before the content check (a bit flip at rest)."""

    def __init__(self, root: Path, victim: Path) -> None:
        super().__init__(root)
        self.victim, self.done = victim, False

    def sha256(self, key: str) -> str | None:
        if not self.done:
            self.done = True
            flip_one_byte(self.victim)
        return super().sha256(key)


def test_release_checks_content_before_latest_moves(tmp_path: Path, scripts: Path) -> None:
    site = tmp_path / "site"
    v1, v2 = make_dist(tmp_path / "dist", "v1.0.0"), make_dist(tmp_path / "dist", "v1.1.0")
    publish(v1, LocalSite(site), QUIET, scripts=scripts)
    before = snapshot(site)
    dest = _FlipAfterReadBack(site, site / "releases" / "v1.1.0" / "km-linux-arm64")
    with pytest.raises(KmError, match=r"releases/v1\.1\.0/km-linux-arm64 no longer matches"):
        publish(v2, dest, QUIET, scripts=scripts)
    after = snapshot(site)
    assert {k: v for k, v in after.items() if not k.startswith("releases/v1.1.0/")} == before
    assert (site / "meta" / "version").read_text() == "v1.0.0\n"


def test_inv_promote_refuses_with_one_line(two: tuple[Path, Release, Release]) -> None:
    site, _, _ = two
    flip_one_byte(site / "releases" / "v1.0.0" / "km-linux-amd64")
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "promote", "--version", "v1.0.0", "--site", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CI": "true"},
    )
    line = one_error_line(proc)
    assert "releases/v1.0.0/km-linux-amd64 no longer matches its published checksum" in line
    assert (site / "meta" / "version").read_text() == "v1.1.0\n"


# --- one publisher at a time --------------------------------------------------------


def test_a_held_lock_refuses_inv_promote_naming_the_holder(two: tuple[Path, Release, Release]) -> None:
    site, _, _ = two
    before = snapshot(site)
    with LocalSite(site).publishing("release v9.9.9"):
        proc = subprocess.run(
            [sys.executable, "-m", "invoke", "promote", "--version", "v1.0.0", "--site", str(site)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "CI": "true"},
        )
    line = one_error_line(proc)
    assert f"local site {site} is locked by another publisher: release v9.9.9 (pid {os.getpid()}" in line
    assert "nothing was changed" in line
    assert snapshot(site) == before


def test_the_lock_is_free_again_after_a_publisher_fails(two: tuple[Path, Release, Release]) -> None:
    site, _, _ = two
    flip_one_byte(site / "releases" / "v1.0.0" / "km-linux-amd64")
    with pytest.raises(KmError):
        promote(LocalSite(site), parse_version("v1.0.0"), QUIET, scripts=site.parent / "scripts")
    with LocalSite(site).publishing("next"):
        pass


class _Slow(LocalSite):
    """Copies into latest/ slowly, so that two publishers surely overlap."""

    def copy(self, src: str, dst: str, headers: dict[str, str]) -> None:
        threading.Event().wait(0.05)
        super().copy(src, dst, headers)


def test_two_publishers_at_once(tmp_path: Path, scripts: Path) -> None:
    site = tmp_path / "site"
    v1, v2 = make_dist(tmp_path / "dist", "v1.0.0"), make_dist(tmp_path / "dist", "v1.1.0")
    publish(v1, LocalSite(site), QUIET, scripts=scripts)
    start = threading.Barrier(2)
    results: dict[str, str] = {}

    def run(name: str, work: object) -> None:
        start.wait()
        try:
            work()  # type: ignore[operator]
            results[name] = "ok"
        except KmError as exc:
            results[name] = str(exc)

    jobs = {
        "release v1.1.0": lambda: publish(v2, _Slow(site), QUIET, scripts=scripts),
        "promote v1.0.0": lambda: promote(_Slow(site), parse_version("v1.0.0"), QUIET, scripts=scripts),
    }
    threads = [threading.Thread(target=run, args=item) for item in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == sorted(jobs)
    winners = [n for n, r in results.items() if r == "ok"]
    losers = [r for r in results.values() if r != "ok"]
    assert len(winners) >= 1
    for message in losers:
        assert "is locked by another publisher: " in message and (
            "release v1.1.0" in message or "promote v1.0.0" in message
        )
    current = assert_current_is_complete(site)
    assert current in ("v1.0.0", "v1.1.0")
    # no version lost: both versioned folders are whole where they were published
    for rel in (v1, v2) if "release v1.1.0" in winners else (v1,):
        for f in rel.files:
            assert (site / "releases" / str(rel.version) / f.name).read_bytes() == f.path.read_bytes()


def test_two_inv_promote_processes_at_once(two: tuple[Path, Release, Release]) -> None:
    site, _, _ = two
    for _ in range(2):
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "invoke", "promote", "--version", v, "--site", str(site)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "CI": "true"},
            )
            for v in ("v1.0.0", "v1.1.0")
        ]
        for p in procs:
            _, err = p.communicate(timeout=120)
            if p.returncode != 0:
                assert "Traceback" not in err
                assert err.strip().splitlines()[-1].startswith("error: local site ")
                assert "is locked by another publisher: promote v1." in err
        assert_current_is_complete(site)


def test_commit_point_is_conditional(tmp_path: Path) -> None:
    site = LocalSite(tmp_path / "site")
    key, headers = key_of(Kind.VERSION), headers_of(Kind.VERSION)
    site.replace_if(key, b"v1.0.0\n", headers, None)
    with pytest.raises(KmError, match="changed by another publisher meanwhile"):
        site.replace_if(key, b"v2.0.0\n", headers, None)
    with pytest.raises(KmError, match="changed by another publisher meanwhile"):
        site.replace_if(key, b"v2.0.0\n", headers, b"v0.9.0\n")
    assert site.read_bytes(key) == b"v1.0.0\n"
    site.replace_if(key, b"v2.0.0\n", headers, b"v1.0.0\n")
    assert site.read_bytes(key) == b"v2.0.0\n"


class _Racer(LocalSite):
    """Another writer moves /version while this one fills latest/ (a lock lost halfway)."""

    def copy(self, src: str, dst: str, headers: dict[str, str]) -> None:
        super().copy(src, dst, headers)
        self.put_bytes(key_of(Kind.VERSION), b"v7.7.7\n", headers_of(Kind.VERSION))


def test_a_pointer_moved_meanwhile_is_never_overwritten(two: tuple[Path, Release, Release]) -> None:
    site, _, _ = two
    with pytest.raises(
        KmError, match=r"meta/version was changed by another publisher meanwhile \(now 'v7.7.7'\)"
    ):
        promote(_Racer(site), parse_version("v1.0.0"), QUIET, scripts=site.parent / "scripts")
    assert (site / "meta" / "version").read_text() == "v7.7.7\n"
