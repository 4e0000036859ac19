"""Package builds: the same km with a build-time marker of the package manager that installs it.

A package build carries ``-X main.InstallMethod=<method>`` (``apt``, ``brew``, ``scoop``,
``winget``); km then refuses ``km update`` and names the package manager's command.
Each variant is built by the build stage's own machinery into
``dist/<v>/.build/variants/<method>/`` with its own stamps, so unchanged inputs rebuild
nothing, and every binary is checked like a release binary.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import build as gobuild
from ..gotool import GoToolchain
from ..layout import BUILD_META
from ..matrix import Target
from ..ui import Reporter

INSTALL_METHOD_VAR = "main.InstallMethod"


@dataclass(frozen=True)
class VariantInfo(gobuild.BuildInfo):
    """The release's build information plus the install-method marker."""

    install_method: str = ""

    @property
    def ldflags(self) -> str:
        return f"{super().ldflags} -X {INSTALL_METHOD_VAR}={self.install_method}"


@dataclass(frozen=True)
class Variant:
    method: str  # the marker: apt, brew, scoop, winget
    targets: tuple[Target, ...]


def variant_dir(dist: Path, method: str) -> Path:
    return dist / BUILD_META / "variants" / method


def published_name(target: Target, method: str) -> str:
    """``km-darwin-arm64-brew``, ``km-windows-amd64-scoop.exe``: a package build under releases/<v>/."""
    stem, dot, ext = target.filename.partition(".")
    return f"{stem}-{method}{dot}{ext}"


def build_variants(
    go: GoToolchain,
    info: gobuild.BuildInfo,
    dist: Path,
    variants: Sequence[Variant],
    reporter: Reporter,
) -> dict[tuple[str, Target], Path]:
    """Build (or find up to date) every variant's targets; the path of each binary."""
    sources = gobuild.source_fingerprint()
    jobs: list[tuple[VariantInfo, Target, Path]] = []
    for v in variants:
        out = variant_dir(dist, v.method)
        (out / BUILD_META).mkdir(parents=True, exist_ok=True)
        vinfo = VariantInfo(**asdict(info), install_method=v.method)
        jobs += [(vinfo, t, out) for t in v.targets]
    workers = max(1, min(os.cpu_count() or 1, len(jobs)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="km-variant") as pool:
        futures = [pool.submit(gobuild._build_one, go, vi, t, out, sources, _Quiet()) for vi, t, out in jobs]
        results = [f.result() for f in futures]
    built: dict[tuple[str, Target], Path] = {}
    for (vinfo, target, _), res in zip(jobs, results, strict=True):
        if res.rebuilt:
            gobuild.check_binary(res.path, target, vinfo, reporter)
        built[(vinfo.install_method, target)] = res.path
    rebuilt = sum(1 for r in results if r.rebuilt)
    reporter.info(f"package builds: {rebuilt} built, {len(results) - rebuilt} up to date")
    return built


class _Quiet(Reporter):
    """Per-target lines of the variant builds are summarised in one line instead."""

    def __init__(self) -> None:
        super().__init__(quiet=True)
