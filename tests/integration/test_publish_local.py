"""SPEC §6 against a local site: order, immutability, idempotence, promotion, rollback, interruption."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from kmrelease.artifacts import Release
from kmrelease.destinations.local import LocalSite
from kmrelease.errors import KmError
from kmrelease.hashing import FileDigest
from kmrelease.publish import read_current
from kmrelease.ui import Bar, Reporter
from kmrelease.version import parse_version
from tests.support.releases import PROJECT, promote, publish

QUIET = Reporter(quiet=True)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def assert_consistent(site: Path, releases: dict[str, Release], *, settled: bool = True) -> None:
    """The invariant: the version pointer only ever names a complete, intact version.

    Once a run has settled, ``latest/`` mirrors it exactly; mid-run, every file in
    ``latest/`` is whole and belongs to one of the releases (installers resolve
    ``/version`` first, so a half-filled ``latest/`` never mixes versions for them).
    """
    pointer = site / "meta" / "version"
    if not pointer.exists():
        return
    v = pointer.read_text().strip()
    rel = releases[v]
    for f in rel.files:
        got = site / "releases" / v / f.name
        assert got.read_bytes() == f.path.read_bytes(), f"releases/{v}/{f.name}"
        if settled:
            assert (site / "releases" / "latest" / f.name).read_bytes() == f.path.read_bytes()
    if not settled:
        whole = {f.path.read_bytes() for r in releases.values() for f in r.files}
        for p in (site / "releases" / "latest").iterdir():
            assert p.name == "only-in-v1.0.0" or p.read_bytes() in whole, p.name


def test_release_layout(tmp_path: Path, release_v1: Release, scripts_dir: Path) -> None:
    site = tmp_path / "site"
    out = publish(release_v1, LocalSite(site), QUIET, scripts=scripts_dir)
    assert out.promoted and out.current == "v1.0.0"
    names = set(PROJECT.build.file_names)
    expected = {f"releases/v1.0.0/{n}" for n in names} | {f"releases/v1.0.0/{n}.sha256" for n in names}
    expected |= {"releases/v1.0.0/SHA256SUMS", "releases/v1.0.0/manifest.json"}
    expected |= {e.replace("v1.0.0", "latest") for e in expected}
    expected |= {"install/install.sh", "install/install.ps1", "meta/version", "meta/health"}
    assert set(snapshot(site)) == expected
    assert (site / "meta" / "version").read_text() == "v1.0.0\n"
    health = json.loads((site / "meta" / "health").read_text())
    assert health["status"] == "ok" and health["version"] == "v1.0.0" and health["published_at"].endswith("Z")
    assert_consistent(site, {"v1.0.0": release_v1})


def test_rerun_changes_nothing(tmp_path: Path, release_v1: Release, scripts_dir: Path) -> None:
    site = tmp_path / "site"
    publish(release_v1, LocalSite(site), QUIET, scripts=scripts_dir)
    before = snapshot(site)
    out = publish(release_v1, LocalSite(site), QUIET, scripts=scripts_dir)
    assert out.uploaded == [] and out.bytes_uploaded == 0 and not out.changed_public
    assert snapshot(site) == before


def test_versions_are_immutable_unless_forced(tmp_path: Path, release_v1: Release, scripts_dir: Path) -> None:
    site = tmp_path / "site"
    publish(release_v1, LocalSite(site), QUIET, scripts=scripts_dir)
    target = site / "releases" / "v1.0.0" / "km-linux-amd64"
    target.write_bytes(b"tampered")
    before = snapshot(site)
    with pytest.raises(KmError, match="releases/v1.0.0/km-linux-amd64: already published with other content"):
        publish(release_v1, LocalSite(site), QUIET, scripts=scripts_dir)
    assert snapshot(site) == before
    out = publish(release_v1, LocalSite(site), QUIET, scripts=scripts_dir, force=True)
    assert out.uploaded == ["km-linux-amd64"]
    assert_consistent(site, {"v1.0.0": release_v1})


def test_prerelease_is_not_current_unless_promoted(
    tmp_path: Path, release_v1: Release, release_rc: Release, scripts_dir: Path
) -> None:
    site = tmp_path / "site"
    publish(release_v1, LocalSite(site), QUIET, scripts=scripts_dir)
    out = publish(release_rc, LocalSite(site), QUIET, scripts=scripts_dir)
    assert not out.promoted
    assert (site / "releases" / "v1.2.0-rc.1" / "manifest.json").exists()
    assert (site / "meta" / "version").read_text() == "v1.0.0\n"
    out = publish(release_rc, LocalSite(site), QUIET, scripts=scripts_dir, promote=True)
    assert out.promoted and (site / "meta" / "version").read_text() == "v1.2.0-rc.1\n"
    assert_consistent(site, {"v1.0.0": release_v1, "v1.2.0-rc.1": release_rc})


def test_an_older_release_does_not_move_latest_back(
    tmp_path: Path, release_v1: Release, release_v11: Release, scripts_dir: Path
) -> None:
    site = tmp_path / "site"
    publish(release_v11, LocalSite(site), QUIET, scripts=scripts_dir)
    out = publish(release_v1, LocalSite(site), QUIET, scripts=scripts_dir)
    assert not out.promoted and (site / "meta" / "version").read_text() == "v1.1.0\n"


def test_rollback_with_promote(
    tmp_path: Path, release_v1: Release, release_v11: Release, scripts_dir: Path
) -> None:
    site = tmp_path / "site"
    dest = LocalSite(site)
    publish(release_v1, dest, QUIET, scripts=scripts_dir)
    publish(release_v11, dest, QUIET, scripts=scripts_dir)
    assert read_current(dest) == parse_version("v1.1.0")
    (site / "releases" / "latest" / "stale-extra-file").write_text("from an older layout")
    promote(dest, parse_version("v1.0.0"), QUIET, scripts=scripts_dir)
    assert (site / "meta" / "version").read_text() == "v1.0.0\n"
    assert not (site / "releases" / "latest" / "stale-extra-file").exists()
    assert (site / "releases" / "v1.1.0" / "manifest.json").exists(), "nothing versioned is ever deleted"
    assert_consistent(site, {"v1.0.0": release_v1, "v1.1.0": release_v11})


def test_promote_of_a_version_never_published(tmp_path: Path, release_v1: Release, scripts_dir: Path) -> None:
    site = tmp_path / "site"
    publish(release_v1, LocalSite(site), QUIET, scripts=scripts_dir)
    before = snapshot(site)
    with pytest.raises(KmError, match="v9.9.9 was never published"):
        promote(LocalSite(site), parse_version("v9.9.9"), QUIET, scripts=scripts_dir)
    assert snapshot(site) == before


def test_promote_of_an_incomplete_version_is_refused(
    tmp_path: Path, release_v1: Release, release_v11: Release, scripts_dir: Path
) -> None:
    site = tmp_path / "site"
    publish(release_v1, LocalSite(site), QUIET, scripts=scripts_dir)
    publish(release_v11, LocalSite(site), QUIET, scripts=scripts_dir)
    (site / "releases" / "v1.0.0" / "km-darwin-arm64").unlink()
    before = snapshot(site)
    with pytest.raises(KmError, match=r"incomplete \(km-darwin-arm64\): not promoted"):
        promote(LocalSite(site), parse_version("v1.0.0"), QUIET, scripts=scripts_dir)
    assert snapshot(site) == before


def test_dry_run_changes_nothing(tmp_path: Path, release_v1: Release, scripts_dir: Path) -> None:
    site = tmp_path / "site"
    publish(release_v1, LocalSite(site), QUIET, scripts=scripts_dir, dry_run=True)
    assert not site.exists()


def test_unwritable_site_is_refused_before_anything(
    tmp_path: Path, release_v1: Release, scripts_dir: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(KmError, match="is not writable"):
        publish(release_v1, LocalSite(blocker / "site"), QUIET, scripts=scripts_dir)
    if os.path.isdir("/proc/self"):
        with pytest.raises(KmError, match="is not writable"):
            publish(release_v1, LocalSite(Path("/proc/self/km-site")), QUIET, scripts=scripts_dir)


class Interrupted(Exception):
    pass


class DiesAfter(LocalSite):
    """A local site whose process "dies" at the n-th mutating call."""

    def __init__(self, root: Path, n: int) -> None:
        super().__init__(root)
        self.left = n

    def _tick(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise Interrupted

    def upload(
        self, key: str, path: Path, digest: FileDigest, headers: dict[str, str], *, overwrite: bool, bar: Bar
    ) -> None:
        self._tick()
        super().upload(key, path, digest, headers, overwrite=overwrite, bar=bar)

    def put_bytes(self, key: str, data: bytes, headers: dict[str, str]) -> None:
        self._tick()
        super().put_bytes(key, data, headers)

    def copy(self, src: str, dst: str, headers: dict[str, str]) -> None:
        self._tick()
        super().copy(src, dst, headers)

    def delete(self, key: str) -> None:
        self._tick()
        super().delete(key)


def test_interrupted_at_every_step_then_rerun(
    tmp_path: Path, release_v1: Release, release_v11: Release, scripts_dir: Path
) -> None:
    """Stop the release of v1.1.0 over v1.0.0 between every pair of writes; re-run; always consistent."""
    releases = {"v1.0.0": release_v1, "v1.1.0": release_v11}
    n = 0
    while True:
        site = tmp_path / f"site{n}"
        publish(release_v1, LocalSite(site), QUIET, scripts=scripts_dir)
        (site / "releases" / "latest" / "only-in-v1.0.0").write_text("x")
        try:
            publish(release_v11, DiesAfter(site, n), QUIET, scripts=scripts_dir)
            finished = True
        except Interrupted:
            finished = False
        assert_consistent(site, releases, settled=finished)
        assert (site / "meta" / "version").read_text() in ("v1.0.0\n", "v1.1.0\n")
        publish(release_v11, LocalSite(site), QUIET, scripts=scripts_dir)
        assert (site / "meta" / "version").read_text() == "v1.1.0\n"
        assert json.loads((site / "meta" / "health").read_text())["version"] == "v1.1.0"
        assert not (site / "releases" / "latest" / "only-in-v1.0.0").exists()
        assert_consistent(site, releases)
        shutil.rmtree(site)  # ~120 MB a stopping point
        if finished:
            break
        n += 1
    # every write was a stopping point: versioned uploads, latest/ copies, version, health, one prune
    assert n == 2 * len(release_v11.files) + 3


def test_no_temp_files_left_after_interruption(
    tmp_path: Path, release_v1: Release, scripts_dir: Path
) -> None:
    site = tmp_path / "site"

    class DiesMidCopy(LocalSite):
        def upload(
            self,
            key: str,
            path: Path,
            digest: FileDigest,
            headers: dict[str, str],
            *,
            overwrite: bool,
            bar: Bar,
        ) -> None:
            class Boom:
                def advance(self, amount: int) -> None:
                    raise Interrupted

            super().upload(key, path, digest, headers, overwrite=overwrite, bar=Boom())

    with pytest.raises(Interrupted):
        publish(release_v1, DiesMidCopy(site), QUIET, scripts=scripts_dir)
    assert [p for p in site.rglob("*") if p.is_file()] == []
