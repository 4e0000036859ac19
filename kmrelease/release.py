"""The pipeline: sign plan → build → packages → checksums → sign → publish → promote → purge →
verify → GitHub Release.

Every stage takes the one :class:`~kmrelease.context.ReleaseContext` of the run and
decides itself whether it runs, saying why when it does not. What differs per
destination is asked of the destination (``dest.cdn``, ``dest.verify_url()``,
``dest.mirrors_to_github``), never its name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .artifacts import Release, load_release
from .build import build
from .checksums import write_checksums
from .config import ProjectConfig, load_project
from .context import ReleaseContext
from .destinations import is_public, open_destination
from .errors import KmError
from .layout import MANIFEST
from .publish import (
    Outcome,
    destination,
    install_scripts,
    promote_version,
    publish_release,
    publisher_lock,
)
from .sbom import sbom_stage
from .sign.keys import TrustedKey
from .sign.release import plan_signing, sign_stage
from .ui import Reporter
from .verify import verify
from .version import Version


@dataclass(frozen=True)
class ReleaseRequest:
    version: Version
    dest: str = "local"
    site: str | None = None
    dry_run: bool = False
    skip_purge: bool = False
    force: bool = False
    promote: bool = False
    prebuilt: Path | None = None
    check_reproducible: bool = False
    skip_packages: bool = False


def open_context(
    version: Version,
    dest: str,
    site: str | None,
    reporter: Reporter,
    project: ProjectConfig | None = None,
    **flags: bool,
) -> ReleaseContext:
    project = project or load_project()
    destination = open_destination(dest, site, project, reporter)
    return ReleaseContext.create(project, version, reporter, dest=destination, **flags)


# --- stages after publishing ------------------------------------------------------------


def purge_stage(ctx: ReleaseContext, outcome: Outcome) -> None:
    """Purge the CDN in front of the destination when something public changed."""
    dest = destination(ctx)
    if ctx.skip_purge:
        ctx.reporter.info("CDN purge skipped (--skip-purge): run `inv purge` to refresh the edge")
    elif dest.cdn is None:
        ctx.reporter.info(f"no CDN in front of {dest.label}: nothing to purge")
    elif not outcome.changed_public:
        ctx.reporter.info("nothing public changed: no CDN purge needed")
    else:
        dest.cdn.purge(ctx.reporter, dry_run=ctx.dry_run)


def verify_stage(ctx: ReleaseContext, trusted: Sequence[TrustedKey] | None = None) -> None:
    """Verify the release over HTTP the way the destination is reached by users (with ``trusted``:
    its signatures too)."""
    dest = destination(ctx)
    with dest.verify_url() as url:
        if url is None:
            ctx.reporter.info(f"no public base URL for {dest.label}: verification through the CDN skipped")
            return
        verify(url, ctx.reporter, ctx.build, version=str(ctx.version), trusted=trusted)


def github_stage(ctx: ReleaseContext, rel: Release, *, latest: bool) -> None:
    """The same file set on the GitHub Release of the tag (the installers' fallback), with GITHUB_TOKEN."""
    if not destination(ctx).mirrors_to_github:
        ctx.reporter.info(f"{destination(ctx).label} is not mirrored to a GitHub Release")
        return
    token = os.environ.get("GITHUB_TOKEN", "").strip()
    if not token:
        ctx.reporter.info("GITHUB_TOKEN is not set: GitHub Release skipped (the release workflow sets it)")
        return
    from .github import API_URL, publish_github_release

    api_url = os.environ.get("KM_GITHUB_API_URL") or API_URL
    repo = ctx.project.github_repository
    publish_github_release(
        rel, repo, token, ctx.reporter, api_url=api_url, latest=latest, binary=ctx.build.binary
    )


# --- the pipeline ---------------------------------------------------------------------


def mirrors_stage(ctx: ReleaseContext, outcome: Outcome, skip_packages: bool) -> None:
    """The Homebrew tap, the Scoop bucket and the winget PR, for a production release that became current."""
    dest = destination(ctx)
    if not dest.mirrors_to_github:
        ctx.reporter.info(f"package repositories not pushed for {dest.label} (`inv mirrors` pushes them)")
    elif not outcome.promoted:
        ctx.reporter.info(f"{ctx.version} did not become current: package repositories left as they are")
    elif skip_packages:
        ctx.reporter.info("package repositories not pushed (--skip-packages)")
    else:
        from .packages.mirrors import push_mirrors
        from .packages.settings import load_settings
        from .packages.stage import packages_dir

        push_mirrors(load_settings(ctx.project), ctx.version, packages_dir(ctx.dist), ctx.reporter)


def packages_stage(ctx: ReleaseContext, skip: bool) -> None:
    """The .deb files, package builds and manifests into dist/<v>/packages/ (before the checksums)."""
    from .packages.stage import make_packages, package_files

    if skip:
        kept = package_files(ctx.dist)
        note = (
            f"; the {len(kept)} files already in {ctx.dist}/packages are published as they are"
            if kept
            else ""
        )
        ctx.reporter.info(f"packages skipped (--skip-packages){note}")
        return
    make_packages(ctx)


def build_stage(
    ctx: ReleaseContext, prebuilt: Path | None, check_reproducible: bool, *, packages: bool
) -> None:
    """The binaries (and, with ``packages``, the package builds in the same pool: they fill the
    cores the last targets' builds leave idle)."""
    if prebuilt is not None:
        from .prebuilt import assemble

        assemble(ctx, prebuilt, check_reproducible=check_reproducible)
        return
    if check_reproducible:
        raise KmError(
            "--check-reproducible compares a --prebuilt directory with a local build: give --prebuilt"
        )
    if packages:
        from .packages.stage import VARIANTS
        from .packages.variants import follow_ups

        build(ctx, then=follow_ups(VARIANTS))
    else:
        build(ctx)


def authenticode(ctx: ReleaseContext) -> None:
    """Sign the Windows binaries before SBOMs and checksums (skipped, with a note, without a certificate)."""
    from .authenticode import authenticode_key, authenticode_stage
    from .build import BuildInfo

    key = authenticode_key(ctx.project.path, ctx.project.root)
    exes = [ctx.file_name(t) for t in ctx.build.targets if t.os == "windows"]
    if ctx.dry_run or key is None:
        authenticode_stage(ctx.dist, exes, key, 0, ctx.reporter, dry_run=True)
        return
    from datetime import datetime

    epoch = int(datetime.fromisoformat(BuildInfo.load(ctx.dist).date.replace("Z", "+00:00")).timestamp())
    from .gocheck import cache_dir

    authenticode_stage(
        ctx.dist, exes, key, epoch, ctx.reporter, dry_run=False, cache=cache_dir(ctx.project.root)
    )


def release(req: ReleaseRequest, reporter: Reporter, project: ProjectConfig | None = None) -> Outcome:
    """Everything from source to a verified, current release."""
    flags = {"dry_run": req.dry_run, "skip_purge": req.skip_purge, "force": req.force, "promote": req.promote}
    project = project or load_project()
    # the cheap checks first: nothing is built for a release that cannot be published or signed
    dest = open_destination(req.dest, req.site, project, reporter)
    plain = ReleaseContext.create(project, req.version, reporter, dest=dest, **flags)
    signing, ctx = plan_signing(plain, public=is_public(req.dest), where=f"--dest {req.dest}")
    dest.check_writable()
    install_scripts(ctx)
    build_stage(ctx, req.prebuilt, req.check_reproducible, packages=not req.skip_packages)
    authenticode(ctx)
    sbom_stage(ctx.dist, ctx.build.file_names, reporter, dry_run=ctx.dry_run)
    packages_stage(ctx, req.skip_packages)
    if ctx.dry_run and not (ctx.dist / MANIFEST).exists():
        reporter.info(f"would write checksums and manifest.json in {ctx.dist}, then publish to {dest.label}")
        return Outcome(uploaded=[], skipped=[])
    write_checksums(ctx)
    sign_stage(ctx, signing)
    rel = load_release(ctx, require_signatures=signing.signer is not None and not ctx.dry_run)
    from .packages.publishing import release_step

    with (
        publisher_lock(dest, f"release {req.version}", ctx.dry_run),  # through verification
        release_step(rel, dest, reporter, force=ctx.force, dry_run=ctx.dry_run) as apt,
    ):
        outcome = publish_release(ctx, rel, before_current=apt, documents=signing.documents())
        if ctx.dry_run:
            return outcome
        purge_stage(ctx, outcome)
        verify_stage(ctx, signing.trusted)
    github_stage(ctx, rel, latest=outcome.promoted)
    mirrors_stage(ctx, outcome, req.skip_packages)
    moved = f"{req.version} is current" if outcome.promoted else f"current stays {outcome.current or 'unset'}"
    reporter.step(
        f"released {req.version} to {dest.label}: {len(outcome.uploaded)} uploaded "
        f"({outcome.bytes_uploaded} bytes), {len(outcome.skipped)} unchanged; {moved}"
    )
    return outcome


def promote(
    version: Version,
    dest_name: str,
    site: str | None,
    reporter: Reporter,
    *,
    skip_purge: bool,
    dry_run: bool,
    project: ProjectConfig | None = None,
) -> Outcome:
    ctx = open_context(version, dest_name, site, reporter, project, skip_purge=skip_purge, dry_run=dry_run)
    from .packages.publishing import promote_step

    with (
        publisher_lock(destination(ctx), f"promote {version}", dry_run),  # through verification
        promote_step(version, destination(ctx), reporter) as apt,
    ):
        outcome = promote_version(ctx, before_current=apt)
        if dry_run:
            return outcome
        purge_stage(ctx, outcome)
        verify_stage(ctx)
    reporter.step(f"{version} is current on {destination(ctx).label}")
    return outcome
