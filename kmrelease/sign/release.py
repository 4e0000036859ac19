"""The signing parts of ``inv release``: choose the signer and the trusted keys before the build
(``plan_signing`` returns the plan and the release context whose ``trusted_keys`` the build and the
published install scripts use), sign ``SHA256SUMS`` after the checksums (``sign_stage``, reusing
signatures already published for it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..context import ReleaseContext
from ..destinations import Destination
from ..errors import KmError
from ..layout import SUMS
from ..ui import Reporter
from ..urlspace import Kind, key_of
from .keys import TrustedKey, load_trusted, principal, trusted_keys_value
from .published import key_documents
from .settings import read_settings, release_signer
from .signers import DEV_KEY, Signer
from .stage import sign_release, verify_pair
from .statement import P256, SIG
from .trust import release_trust


@dataclass(frozen=True)
class SigningPlan:
    signer: Signer | None  # None only for a dry run that would make the development key
    trusted: tuple[TrustedKey, ...]  # what the binaries, install scripts and /keys/ trust
    principal: str  # release@<public host>

    @property
    def trusted_keys(self) -> str:
        """The {trusted_keys} ldflags value."""
        return trusted_keys_value(self.trusted)

    def documents(self) -> dict[Kind, bytes]:
        """The key documents this release publishes (``/keys/...``)."""
        return key_documents(self.trusted, self.principal)


def plan_signing(ctx: ReleaseContext, *, public: bool, where: str) -> tuple[SigningPlan, ReleaseContext]:
    """The signer, and ``ctx`` with the keys the binaries and install scripts trust; refuses an
    unsigned or development-key release to a ``public`` destination (``where``: its name, for
    messages) before the destination is even opened."""
    root, reporter = ctx.project.root, ctx.reporter
    settings = read_settings(ctx.project.path)
    who = principal(ctx.project.public_base_url)
    if ctx.dry_run and not settings.configured and not public and not (root / DEV_KEY).is_file():
        reporter.info(f"no signing key configured: would make the development key {DEV_KEY} and sign with it")
        plan = SigningPlan(None, tuple(load_trusted(settings.keys_path(root))), who)
    else:
        signer = release_signer(settings, root, public=public, where=where, reporter=reporter)
        trusted = release_trust(settings.keys_path(root), signer, public=public, reporter=reporter)
        plan = SigningPlan(signer, tuple(trusted), who)
    return plan, ctx.replace(trusted_keys=tuple(t.der for t in plan.trusted))


def destination_of(ctx: ReleaseContext) -> Destination:
    if ctx.dest is None:
        raise KmError("internal: signing a release needs its destination in the release context")
    return ctx.dest


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
    written = [name for name, data in ((SIG, sig), (P256, p256)) if _write_if_other(dist / name, data)]
    if written:  # dist/ already holding them (a warm release): nothing to say, no byte rewritten
        reporter.info(f"{SIG} and {P256} of {version} are already published for this {SUMS}: reused")


def _write_if_other(path: Path, data: bytes) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return True


def sign_stage(ctx: ReleaseContext, plan: SigningPlan) -> None:
    dist, reporter, version = ctx.dist, ctx.reporter, str(ctx.version)
    if plan.signer is None:
        reporter.info(f"would sign {SUMS} with the development key")
        return
    if not ctx.dry_run and (dist / SUMS).is_file():
        key = TrustedKey("", plan.signer.public_key())
        adopt_published(destination_of(ctx), dist, version, key, reporter)
    sign_release(dist, version, plan.signer, reporter, dry_run=ctx.dry_run)
