"""Debian versions of release versions (SPEC §14): ``v1.3.0-rc.1`` → ``1.3.0~rc.1``."""

from __future__ import annotations

from ..version import Version


def debian_version(version: Version) -> str:
    """The release version without ``v``; a pre-release after ``~`` so that it sorts before its release.

    There is no Debian revision, so the upstream part may not hold a hyphen: a hyphen
    inside a pre-release identifier (``rc-1``) becomes ``+``, which sorts the same way
    against letters and digits.
    """
    core = f"{version.major}.{version.minor}.{version.patch}"
    if not version.prerelease:
        return core
    return core + "~" + ".".join(version.prerelease).replace("-", "+")
