"""Package builds: the same km with a build-time marker of the package manager that installs it.

A package build fills ``{install_method}`` of ``[build] ldflags`` with ``apt``, ``brew``,
``scoop`` or ``winget`` (this repository: ``-X main.InstallMethod={install_method}``); km then
refuses ``km update`` and names the package manager's command.
Each variant is built by the build stage's own machinery into
``dist/<v>/.build/variants/<method>/`` with its own stamps, so unchanged inputs rebuild
nothing, and every binary is checked like a release binary.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .. import build as gobuild
from ..context import BuildVariant, ReleaseContext
from ..gotool import GoToolchain
from ..layout import BUILD_META
from ..matrix import Target
from ..ui import Reporter


@dataclass(frozen=True)
class Variant:
    method: str  # the marker: apt, brew, scoop, winget
    targets: tuple[Target, ...]


def published_name(target: Target, method: str, binary: str = "km") -> str:
    """``km-darwin-arm64-brew``, ``km-windows-amd64-scoop.exe``: a package build under releases/<v>/."""
    stem, dot, ext = target.file_name(binary).partition(".")
    return f"{stem}-{method}{dot}{ext}"


def build_variants(
    ctx: ReleaseContext, go: GoToolchain, info: gobuild.BuildInfo, variants: Sequence[Variant]
) -> dict[tuple[str, Target], Path]:
    """Build (or find up to date) every variant's targets; the path of each binary.

    Each is the release's own recipe (``[build]``) with ``{install_method}`` filled, built
    into ``ctx.variant_dir`` with its own stamps; a rebuilt binary is checked like a release one.
    """
    quiet = ctx.replace(reporter=Reporter(quiet=True))  # one line for all of them instead
    sources = gobuild.source_fingerprint(ctx.project.root)
    jobs = [_job(ctx, info, v.method, t) for v in variants for t in v.targets]
    workers = max(1, min(os.cpu_count() or 1, len(jobs)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="km-variant") as pool:
        futures = [
            pool.submit(gobuild._build_one, quiet, go, r, out, sources, out / BUILD_META) for r, out in jobs
        ]
        results = [f.result() for f in futures]
    gobuild.check_follow_ups(ctx, info, [(res, r) for (r, _), res in zip(jobs, results, strict=True)])
    return {(out.name, r.target): res.path for (r, out), res in zip(jobs, results, strict=True)}


def _job(
    ctx: ReleaseContext, info: gobuild.BuildInfo, method: str, target: Target
) -> tuple[gobuild.Recipe, Path]:
    out = ctx.variant_dir(BuildVariant(method))
    (out / BUILD_META).mkdir(parents=True, exist_ok=True)
    return gobuild.recipe(ctx, info, target, BuildVariant(method)), out


def follow_ups(variants: Sequence[Variant]) -> gobuild.FollowUps:
    """The package builds of each target, for the release build's pool (:func:`kmrelease.build.build`):
    the packages stage then finds them up to date."""

    def jobs(
        ctx: ReleaseContext, target: Target, info: gobuild.BuildInfo
    ) -> list[tuple[gobuild.Recipe, Path]]:
        return [_job(ctx, info, v.method, target) for v in variants if target in v.targets]

    return jobs
