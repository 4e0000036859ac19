"""One CycloneDX SBOM per binary, from `go version -m`, listed in SHA256SUMS and published."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kmrelease.artifacts import Release, load_release
from kmrelease.checksums import write_checksums
from kmrelease.errors import KmError
from kmrelease.gotool import find_go
from kmrelease.sbom import SBOM_DIR, parse_go_version_m, sbom_stage
from kmrelease.ui import Reporter
from tests.support.releases import PROJECT, context

QUIET = Reporter(quiet=True)


def test_every_binary_gets_a_valid_reproducible_sbom_covered_by_sha256sums(
    release_v1: Release, tmp_path: Path
) -> None:
    dist = tmp_path / "v1.0.0"
    shutil.copytree(release_v1.files[0].path.parent, dist)
    names = PROJECT.build.file_names
    ctx = context("v1.0.0", tmp_path)
    paths = sbom_stage(dist, names, QUIET, dry_run=False)
    assert [p.name for p in paths] == [n + ".cdx.json" for n in names]
    doc = json.loads(paths[0].read_text())
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    subject = doc["metadata"]["component"]
    assert subject["name"] == names[0] and subject["version"] == "v1.0.0" and subject["type"] == "application"
    digest = release_v1.manifest["artifacts"][0]["sha256"]
    assert subject["hashes"] == [{"alg": "SHA-256", "content": digest}]
    purls = {c["purl"] for c in doc["components"]}
    assert "pkg:golang/github.com/kilometers-ai/kilometers-cli@v1.0.0" in purls
    assert any(p.startswith("pkg:golang/stdlib@v1.") for p in purls)
    assert doc["metadata"]["timestamp"].startswith(release_v1.manifest["date"][:19])
    first = paths[0].read_bytes()
    sbom_stage(dist, names, QUIET, dry_run=False)
    assert paths[0].read_bytes() == first  # the same binary, the same bytes
    write_checksums(ctx)
    sums = (dist / "SHA256SUMS").read_text()
    assert all(f"  {n}.cdx.json\n" in sums for n in names)
    rel = load_release(ctx)
    assert {n + ".cdx.json" for n in names} <= set(rel.names)
    # the validator of the CycloneDX library accepts it
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(paths[0].read_text()) is None


def test_a_binary_without_go_build_information_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "km-linux-amd64").write_bytes(b"\x7fELF not go")
    from kmrelease.sbom import build_modules

    with pytest.raises(KmError, match="km-linux-amd64: cannot read its Go module information"):
        build_modules(find_go(), tmp_path / "km-linux-amd64")
    with pytest.raises(ValueError):
        parse_go_version_m("nothing")
    mods = parse_go_version_m(
        "x: go1.27.3\n\tpath\texample.com/m/cmd/x\n\tmod\texample.com/m\t(devel)\t\n"
        "\tdep\texample.com/dep\tv1.2.0\th1:abc=\n\tbuild\tCGO_ENABLED=0\n"
    )
    assert mods.deps[0].sum == "h1:abc=" and mods.settings == (("CGO_ENABLED", "0"),)
    assert SBOM_DIR == "sbom"
