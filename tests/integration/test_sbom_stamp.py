"""An SBOM is made again only when what decides its bytes changed (kmrelease.sbom's stamp)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kmrelease import sbom
from kmrelease.artifacts import Release
from kmrelease.sbom import sbom_stage
from kmrelease.ui import Reporter
from tests.support.releases import PROJECT

QUIET = Reporter(quiet=True)


@pytest.fixture
def dist(release_v1: Release, tmp_path: Path) -> Path:
    out = tmp_path / "v1.0.0"
    shutil.copytree(release_v1.files[0].path.parent, out)
    return out


def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    made: list[str] = []
    real = sbom.render_sbom

    def spy(binary: Path, *args: object, **kw: object) -> str:
        made.append(binary.name)
        return real(binary, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(sbom, "render_sbom", spy)
    return made


def test_the_same_binaries_keep_their_sboms(dist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = PROJECT.build.file_names[:2]
    first = [p.read_bytes() for p in sbom_stage(dist, names, QUIET, dry_run=False)]
    made = renders(monkeypatch)
    again = [p.read_bytes() for p in sbom_stage(dist, names, QUIET, dry_run=False)]
    assert made == [] and again == first


def test_an_edited_sbom_or_another_binary_is_made_again(dist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = PROJECT.build.file_names[:2]
    paths = sbom_stage(dist, names, QUIET, dry_run=False)
    original = paths[0].read_bytes()
    paths[0].write_text("{}\n")  # edited by hand: not what the stamp recorded
    made = renders(monkeypatch)
    sbom_stage(dist, names, QUIET, dry_run=False)
    assert made == [names[0]] and paths[0].read_bytes() == original
    shutil.copyfile(dist / names[1], dist / "copy")
    shutil.copyfile(dist / names[0], dist / names[1])  # other bytes under the second name
    sbom_stage(dist, names, QUIET, dry_run=False)
    assert made == [names[0], names[1]]
