"""Stage: every package of a release into ``dist/<v>/packages/`` (SPEC §14).

The ``.deb`` files (amd64, arm64), the package builds that Homebrew, Scoop and winget
install (each with its ``.sha256``), the formula ``km.rb``, the Scoop manifest
``km.json`` and the winget manifests. Everything in the folder is a release file: the
checksum stage lists it in ``SHA256SUMS`` and the release publishes it under
``releases/<v>/``; the ``.deb`` files also go to the APT pool. Only what changed is
rewritten, so a warm release writes no byte here.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..build import BuildInfo, with_trusted_keys
from ..checksums import sha256_line
from ..context import ReleaseContext
from ..errors import KmError
from ..gotool import find_go
from ..hashing import sha256_file
from ..layout import sha256_name, write_if_changed
from ..matrix import Target
from ..version import Version, parse_version
from . import formats
from .deb import DEB_ARCHES, DebSpec, build_deb, epoch_of
from .debver import debian_version
from .settings import PackageSettings, load_settings
from .variants import Variant, build_variants

PACKAGES_DIR = "packages"

LINUX = (Target("linux", "amd64"), Target("linux", "arm64"))
DARWIN = (Target("darwin", "amd64"), Target("darwin", "arm64"))
WINDOWS = (Target("windows", "amd64"), Target("windows", "arm64"))
# The package builds: one per package manager and platform it serves.
VARIANTS: tuple[Variant, ...] = (
    Variant("apt", LINUX),
    Variant("brew", DARWIN + LINUX),
    Variant("scoop", WINDOWS),
    Variant("winget", WINDOWS),
)
PUBLISHED_METHODS = ("brew", "scoop", "winget")  # apt's builds ship inside the .deb only


@dataclass
class PackagesOutcome:
    folder: Path
    files: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def packages_dir(dist: Path) -> Path:
    return dist / PACKAGES_DIR


def _copy_if_changed(src: Path, dst: Path) -> bool:
    """``dst`` = the package build ``src``: a hard link (the build replaces, never rewrites, its
    output), a copy across file systems; nothing when it already holds the same bytes."""
    if dst.is_file() and dst.stat().st_size == src.stat().st_size and sha256_file(dst) == sha256_file(src):
        return False
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o755)
    os.replace(tmp, dst)
    return True


def make_packages(ctx: ReleaseContext) -> PackagesOutcome:
    """Build every package of ``ctx.version`` from the release's build information in ``ctx.dist``."""
    version, dist, reporter, dry_run = ctx.version, ctx.dist, ctx.reporter, ctx.dry_run
    settings = load_settings(ctx.project)
    out = packages_dir(dist)
    debver = debian_version(version)
    reporter.step(f"packages for {version} (Debian {debver}) into {out}")
    outcome = PackagesOutcome(out)
    if dry_run:
        for v in VARIANTS:
            reporter.info(f"would build {len(v.targets)} package build(s) marked InstallMethod={v.method}")
        reporter.info("would write the .deb files, km.rb, km.json and the winget manifests")
        return outcome
    info = BuildInfo.load(dist)
    if parse_version(info.version) != version:
        raise KmError(f"{dist} holds a build of {info.version}, not {version}")
    out.mkdir(parents=True, exist_ok=True)
    built = build_variants(with_trusted_keys(ctx), find_go(), info, VARIANTS)
    files: dict[str, bool] = {}
    epoch = epoch_of(info.date)
    specs = [
        (DebSpec(settings, debver, DEB_ARCHES[t.arch], epoch, str(version)), built[("apt", t)]) for t in LINUX
    ]
    with ThreadPoolExecutor(
        max_workers=len(specs), thread_name_prefix="km-deb"
    ) as pool:  # dpkg-deb: a process each
        for path, changed in pool.map(lambda sb: build_deb(sb[0], sb[1], dist, out), specs):
            files[path.name] = changed
    builds: list[formats.PackageBuild] = []
    for method in PUBLISHED_METHODS:
        for target in next(v.targets for v in VARIANTS if v.method == method):
            pb = formats.PackageBuild(target, method, sha256_file(built[(method, target)]), ctx.build.binary)
            builds.append(pb)
            files[pb.name] = _copy_if_changed(built[(method, target)], out / pb.name)
            files[sha256_name(pb.name)] = bool(
                write_if_changed(out / sha256_name(pb.name), sha256_line(pb.sha256, pb.name))
            )
    for name, text in _documents(settings, version, builds, info.date).items():
        files[name] = bool(write_if_changed(out / name, text))
    outcome.files = sorted(files)
    outcome.written = sorted(n for n, changed in files.items() if changed)
    for stale in sorted(p for p in out.iterdir() if p.name not in files and not p.name.startswith(".")):
        stale.unlink()
        outcome.removed.append(stale.name)
    reporter.info(
        f"{len(outcome.files)} package files, {len(outcome.written)} written"
        + (f", {len(outcome.removed)} stale removed" if outcome.removed else "")
    )
    return outcome


def _documents(
    s: PackageSettings, version: Version, builds: list[formats.PackageBuild], date: str
) -> dict[str, str]:
    docs = {
        f"{s.formula}.rb": formats.homebrew_formula(s, version, builds),
        f"{s.binary}.json": formats.scoop_manifest(s, version, builds),
    }
    docs.update(formats.winget_manifests(s, version, builds, date))
    return docs


def package_files(dist: Path) -> list[Path]:
    """The files of ``dist/<v>/packages/`` (published as release files), sorted by name."""
    folder = packages_dir(dist)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")), key=str)
