"""Where a release is published: one small interface, one module per backend."""

from __future__ import annotations

from ..config import ProjectConfig
from ..errors import KmError
from ..layout import site_dir
from ..ui import Reporter
from .base import Cdn, Destination, ObjectInfo

__all__ = ["DESTINATIONS", "Cdn", "Destination", "ObjectInfo", "is_public", "open_destination"]

DESTINATIONS = ("local", "azure")


def is_public(name: str) -> bool:
    """Whether ``--dest NAME`` is what users install from (known before it is opened: no credentials
    are needed to refuse an unsigned release)."""
    if name == "local":
        return False
    if name == "azure":
        return True
    raise KmError(f"unknown destination {name!r}: expected one of {', '.join(DESTINATIONS)}")


def open_destination(name: str, site: str | None, project: ProjectConfig, reporter: Reporter) -> Destination:
    """The destination of ``--dest NAME`` (``--site`` for a local one)."""
    is_public(name)  # a known name
    if name == "local":
        from .local import LocalSite

        return LocalSite(site_dir(project, site))
    if site:
        raise KmError(f"--site is for --dest local, not --dest {name}")
    from ..extras import needs_extra

    with needs_extra("azure", "--dest azure"):
        from .azure import AzureBlobDestination

    return AzureBlobDestination.from_environment(project, reporter)
