"""The signing parts of ``inv release``: choose the signer and the trusted keys before the build,
sign ``SHA256SUMS`` after the checksums (reusing signatures already published for it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import ROOT, ReleaseConfig
from ..destinations import Destination
from ..layout import SUMS
from ..ui import Reporter
from ..urlspace import Kind, key_of
from .keys import TrustedKey, load_trusted, principal, trusted_keys_value
from .published import public_objects
from .settings import read_settings, release_signer
from .signers import DEV_KEY, Signer
from .stage import sign_release, verify_pair
from .statement import P256, SIG
from .trust import release_trust

if TYPE_CHECKING:
    from ..release import ReleaseRequest


@dataclass(frozen=True)
class SigningPlan:
    signer: Signer | None  # None only for a dry run that would make the development key
    trusted: tuple[TrustedKey, ...]  # what the binaries, install scripts and /keys/ trust
    principal: str  # release@<public host>

    @property
    def trusted_keys(self) -> str:
        """The {trusted_keys} ldflags value."""
        return trusted_keys_value(self.trusted)

    def public(self, scripts: Sequence[tuple[Kind, Path]]) -> dict[Kind, bytes]:
        """The install scripts and key documents this release publishes."""
        return public_objects(self.trusted, self.principal, scripts)


def plan_signing(
    req: ReleaseRequest, config: ReleaseConfig, reporter: Reporter, root: Path = ROOT
) -> SigningPlan:
    """The signer and the keys the binaries trust; refuses an unsigned or development-key Azure release."""
    settings = read_settings(config.path)
    who = principal(config.public_base_url)
    if req.dry_run and not settings.configured and req.dest == "local" and not (root / DEV_KEY).is_file():
        reporter.info(f"no signing key configured: would make the development key {DEV_KEY} and sign with it")
        return SigningPlan(None, tuple(load_trusted(settings.keys_path(root))), who)
    signer = release_signer(settings, root, dest=req.dest, reporter=reporter)
    trusted = release_trust(settings.keys_path(root), signer, req.dest, reporter)
    return SigningPlan(signer, tuple(trusted), who)


def adopt_published(dest: Destination, dist: Path, version: str, key: TrustedKey, reporter: Reporter) -> None:
    """Signatures already published for this exact SHA256SUMS (an interrupted run) are reused, not remade."""
    folder = key_of(Kind.VERSIONED, version=version, file="")
    sums = (dist / SUMS).read_bytes()
    if dest.read_bytes(folder + SUMS) != sums:
        return
    sig, p256 = dest.read_bytes(folder + SIG), dest.read_bytes(folder + P256)
    if (
        sig is None
        or p256 is None
        or not verify_pair(sig.decode("utf-8", "replace"), p256, version, sums, key.key)
    ):
        return
    (dist / SIG).write_bytes(sig)
    (dist / P256).write_bytes(p256)
    reporter.info(f"{SIG} and {P256} of {version} are already published for this {SUMS}: reused")


def sign_stage(
    plan: SigningPlan, dist: Path, dest: Destination, req: ReleaseRequest, reporter: Reporter
) -> None:
    if plan.signer is None:
        reporter.info(f"would sign {SUMS} with the development key")
        return
    if not req.dry_run and (dist / SUMS).is_file():
        adopt_published(dest, dist, str(req.version), TrustedKey("", plan.signer.public_key()), reporter)
    sign_release(dist, str(req.version), plan.signer, reporter, dry_run=req.dry_run)
