"""The pipeline: build → checksums → publish → promote → purge → verify, and its parts for tasks."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .artifacts import Release, load_release
from .build import build
from .checksums import write_checksums
from .config import ReleaseConfig, load_config
from .destinations import Destination
from .destinations.local import LocalSite
from .errors import KmError
from .extras import needs_extra
from .layout import dist_dir, site_dir
from .matrix import TARGETS
from .publish import Outcome, promote_version, publish_release, publisher_lock, script_paths
from .sbom import sbom_stage
from .serve import SiteBackend, running
from .sign.keys import TrustedKey
from .sign.release import plan_signing, sign_stage
from .ui import Reporter
from .verify import verify
from .version import Version

DESTINATIONS = ("local", "azure")


def open_destination(dest: str, site: str | None, config: ReleaseConfig, reporter: Reporter) -> Destination:
    if dest == "local":
        return LocalSite(site_dir(site))
    if dest == "azure":
        with needs_extra("azure", "--dest azure"):
            from .destinations.azure import AzureBlobDestination

        return AzureBlobDestination.from_environment(config, reporter)
    raise KmError(f"unknown destination {dest!r}: expected one of {', '.join(DESTINATIONS)}")


def public_base_url(config: ReleaseConfig, explicit: str | None = None) -> str | None:
    return explicit or os.environ.get("KM_BASE_URL") or config.public_base_url or None


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


def after_publish(
    outcome: Outcome,
    dest: Destination,
    req_dest: str,
    config: ReleaseConfig,
    reporter: Reporter,
    *,
    skip_purge: bool,
    version: Version,
    trusted: Sequence[TrustedKey] | None = None,
) -> None:
    """Steps 5 and 6: purge the CDN, then verify through the public URL."""
    if skip_purge:
        reporter.info("CDN purge skipped (--skip-purge): run `inv purge` to refresh the edge")
    elif req_dest == "local":
        reporter.info("no CDN in front of a local site: nothing to purge")
    elif outcome.changed_public:
        with needs_extra("azure", "the CDN purge"):
            from . import cdn

        cdn.purge(config, reporter)
    else:
        reporter.info("nothing public changed: no CDN purge needed")
    if isinstance(dest, LocalSite):
        # The local edge is the CDN of a local site: verify through it over real HTTP.
        with running(SiteBackend(dest.root)) as url:
            verify(url, reporter, version=str(version), trusted=trusted)
        return
    base = public_base_url(config)
    if base:
        verify(base, reporter, version=str(version), trusted=trusted)
    else:
        reporter.info("no public base URL configured: verification through the CDN skipped")


def publish_to_github(rel: Release, config: ReleaseConfig, reporter: Reporter, *, latest: bool) -> None:
    """The same file set on the GitHub Release of the tag (the installers' fallback), with GITHUB_TOKEN."""
    token = os.environ.get("GITHUB_TOKEN", "").strip()
    if not token:
        reporter.info("GITHUB_TOKEN is not set: GitHub Release skipped (the release workflow sets it)")
        return
    from .github import API_URL, publish_github_release

    api_url = os.environ.get("KM_GITHUB_API_URL") or API_URL
    publish_github_release(rel, config.github_repository, token, reporter, api_url=api_url, latest=latest)


def packages_stage(req: ReleaseRequest, dist: Path, reporter: Reporter) -> None:
    """The .deb files, package builds and manifests into dist/<v>/packages/ (before the checksums)."""
    from .packages.stage import make_packages, package_files

    if req.skip_packages:
        kept = package_files(dist)
        note = f"; the {len(kept)} files already in {dist}/packages are published as they are" if kept else ""
        reporter.info(f"packages skipped (--skip-packages){note}")
        return
    make_packages(req.version, dist, reporter, dry_run=req.dry_run)


def mirrors_stage(req: ReleaseRequest, dist: Path, outcome: Outcome, reporter: Reporter) -> None:
    """The Homebrew tap, the Scoop bucket and the winget PR, for a production release that became current."""
    if req.dest != "azure":
        reporter.info(f"package repositories not pushed for a {req.dest} release (`inv mirrors` pushes them)")
    elif not outcome.promoted:
        reporter.info(f"{req.version} did not become current: package repositories left as they are")
    elif req.skip_packages:
        reporter.info("package repositories not pushed (--skip-packages)")
    else:
        from .packages.mirrors import push_mirrors
        from .packages.settings import load_settings
        from .packages.stage import packages_dir

        push_mirrors(load_settings(), req.version, packages_dir(dist), reporter)


def authenticode(dist: Path, config: ReleaseConfig, reporter: Reporter, *, dry_run: bool) -> None:
    """Sign the Windows binaries before SBOMs and checksums (skipped, with a note, without a certificate)."""
    from .authenticode import authenticode_key, authenticode_stage
    from .build import BuildInfo
    from .config import ROOT

    key = authenticode_key(config.path, ROOT)
    exes = [t.filename for t in TARGETS if t.os == "windows"]
    if dry_run or key is None:
        authenticode_stage(dist, exes, key, 0, reporter, dry_run=True)
        return
    from datetime import datetime

    epoch = int(datetime.fromisoformat(BuildInfo.load(dist).date.replace("Z", "+00:00")).timestamp())
    authenticode_stage(dist, exes, key, epoch, reporter, dry_run=False)


def release(req: ReleaseRequest, reporter: Reporter) -> Outcome:
    """Everything from source to a verified, current release."""
    config = load_config()
    # the cheap checks first: nothing is built for a release that cannot be published (or signed)
    dest = open_destination(req.dest, req.site, config, reporter)
    signing = plan_signing(req, config, reporter)
    dest.check_writable()
    script_paths()
    dist = dist_dir(str(req.version))
    if req.prebuilt is not None:
        from .prebuilt import assemble

        dist = assemble(
            req.prebuilt,
            req.version,
            reporter,
            dry_run=req.dry_run,
            check_reproducible=req.check_reproducible,
        )
    else:
        if req.check_reproducible:
            raise KmError(
                "--check-reproducible compares a --prebuilt directory with a local build: give --prebuilt"
            )
        build(req.version, TARGETS, reporter, dry_run=req.dry_run, trusted_keys=signing.trusted_keys)
    authenticode(dist, config, reporter, dry_run=req.dry_run)
    sbom_stage(dist, [t.filename for t in TARGETS], reporter, dry_run=req.dry_run)
    packages_stage(req, dist, reporter)
    if req.dry_run and not (dist / "manifest.json").exists():
        reporter.info(f"would write checksums and manifest.json in {dist}, then publish to {dest.label}")
        dest.check_writable()
        return Outcome(uploaded=[], skipped=[])
    write_checksums(dist, reporter, dry_run=req.dry_run)
    sign_stage(signing, dist, dest, req, reporter)
    rel = load_release(dist, req.version, require_signatures=signing.signer is not None and not req.dry_run)
    from .packages.publishing import release_step

    public = signing.public(script_paths())
    with (
        publisher_lock(dest, f"release {req.version}", req.dry_run),  # through verification
        release_step(rel, dest, reporter, force=req.force, dry_run=req.dry_run) as apt,
    ):
        outcome = publish_release(
            rel,
            dest,
            reporter,
            force=req.force,
            promote=req.promote,
            dry_run=req.dry_run,
            before_current=apt,
            public=public,
        )
        if req.dry_run:
            return outcome
        after_publish(
            outcome,
            dest,
            req.dest,
            config,
            reporter,
            skip_purge=req.skip_purge,
            version=req.version,
            trusted=signing.trusted,
        )
    if req.dest == "azure":
        publish_to_github(rel, config, reporter, latest=outcome.promoted)
    mirrors_stage(req, dist, outcome, reporter)
    moved = f"{req.version} is current" if outcome.promoted else f"current stays {outcome.current or 'unset'}"
    reporter.step(
        f"released {req.version} to {dest.label}: {len(outcome.uploaded)} uploaded "
        f"({outcome.bytes_uploaded} bytes), {len(outcome.skipped)} unchanged; {moved}"
    )
    return outcome


def promote(
    version: Version, dest_name: str, site: str | None, reporter: Reporter, *, skip_purge: bool, dry_run: bool
) -> Outcome:
    config = load_config()
    dest = open_destination(dest_name, site, config, reporter)
    from .packages.publishing import promote_step

    with (
        publisher_lock(dest, f"promote {version}", dry_run),  # through verification
        promote_step(version, dest, reporter) as apt,
    ):
        outcome = promote_version(dest, version, reporter, dry_run=dry_run, before_current=apt)
        if dry_run:
            return outcome
        after_publish(outcome, dest, dest_name, config, reporter, skip_purge=skip_purge, version=version)
    reporter.step(f"{version} is current on {dest.label}")
    return outcome
