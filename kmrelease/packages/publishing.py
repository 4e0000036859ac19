"""The APT steps of ``inv release`` and ``inv promote``: glue between the pipeline and :mod:`.apt`.

Both run after the version's files are uploaded and read back and before anything
current changes (SPEC §6, HELPERS stage order: APT pool, then APT index, then make
current). The signing key is loaded only when there is something to sign; a production
destination without a configured key is refused before anything is uploaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from ..artifacts import Release
from ..destinations import Destination
from ..errors import KmError
from ..ui import Reporter
from ..urlspace import Kind, key_of
from ..version import Version
from .apt import AptRepository, deb_inputs, debs_of
from .openpgp import KEY_ENV, Signer, key_source, signer
from .settings import load_settings


def is_production(dest: Destination) -> bool:
    """Anything but a local site or a loopback emulator (Azurite: the only destination that
    creates its own containers) is production, and needs a configured signing key."""
    return dest.public and not getattr(dest, "create_containers", False)


class _Signing:
    def __init__(self, stack: ExitStack, dest: Destination, reporter: Reporter) -> None:
        self._stack, self._dest, self._reporter = stack, dest, reporter
        self._signer: Signer | None = None

    def get(self) -> Signer:
        if self._signer is None:
            self._signer = self._stack.enter_context(
                signer(self._reporter, production=is_production(self._dest))
            )
        return self._signer


def check_signing(dest: Destination, rel: Release) -> None:
    """Validation: a production release with packages needs the configured key (changes nothing)."""
    if debs_of(rel.names) and is_production(dest) and key_source() is None:
        raise KmError(f"{dest.label} needs the APT signing key: set {KEY_ENV} (nothing was uploaded)")


@contextmanager
def release_step(
    rel: Release, dest: Destination, reporter: Reporter, *, force: bool, dry_run: bool
) -> Iterator[Callable[[], bool] | None]:
    """The ``before_current`` step of a release: the .deb files into the pool, then the signed index."""
    debs = debs_of(rel.names)
    if not debs:
        reporter.info("no .deb in this release: the APT repository is left as it is")
        yield None
        return
    if dry_run:
        reporter.info(f"would add {len(debs)} .deb file(s) to the APT pool, then sign the APT index")
        yield None
        return
    check_signing(dest, rel)
    paths = {f.name: f.path for f in rel.files}
    with ExitStack() as stack:
        signing = _Signing(stack, dest, reporter)

        def run() -> bool:
            inputs = deb_inputs(rel.version, debs, lambda n: paths[n].read_bytes())
            repo = AptRepository(dest, load_settings(), reporter)
            return repo.publish(rel.version, inputs, signing.get(), force=force).changed

        yield run


@contextmanager
def promote_step(
    version: Version, dest: Destination, reporter: Reporter
) -> Iterator[Callable[[list[str]], bool]]:
    """The ``before_current`` step of a promotion: the version's packages are in the pool and indexed."""
    with ExitStack() as stack:
        signing = _Signing(stack, dest, reporter)

        def run(names: list[str]) -> bool:
            debs = debs_of(names)
            if not debs:
                reporter.info(f"{version} has no .deb: the APT repository is left as it is")
                return False
            inputs = deb_inputs(version, debs, lambda n: _read(dest, version, n))
            return (
                AptRepository(dest, load_settings(), reporter).publish(version, inputs, signing.get()).changed
            )

        yield run


def _read(dest: Destination, version: Version, name: str) -> bytes:
    key = key_of(Kind.VERSIONED, version=str(version), file=name)
    data = dest.read_bytes(key)
    if data is None:
        raise KmError(f"{key} is missing on {dest.label}: the APT repository was not changed")
    return data
