"""Release versions (SPEC §2): ``vMAJOR.MINOR.PATCH[-prerelease]``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from .errors import KmError

# One grammar everywhere, ASCII only: ``[0-9]``, never the digit escape (it matches every
# Unicode digit, so that ``v1٠.0.0`` would read as ``v10.0.0``).
_NUM = r"(0|[1-9][0-9]*)"
_PRE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
# The grammar without anchors or groups, for embedding (the URL space's ``{version}``).
VERSION_PATTERN = (
    r"v(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)"
    rf"(?:-{_PRE_ID}(?:\.{_PRE_ID})*)?"
)
VERSION_RE = re.compile(rf"v{_NUM}\.{_NUM}\.{_NUM}(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?", re.ASCII)
ACCEPTED_FORM = "vMAJOR.MINOR.PATCH with an optional pre-release, e.g. v1.2.3 or v1.2.0-rc.1"


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()

    def __str__(self) -> str:
        core = f"v{self.major}.{self.minor}.{self.patch}"
        return core + ("-" + ".".join(self.prerelease) if self.prerelease else "")

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # SemVer §11: a pre-release sorts before its release; numeric identifiers
        # sort numerically and before alphanumeric ones.
        pre = tuple((0, int(p), "") if _is_numeric(p) else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()


def _is_numeric(identifier: str) -> bool:
    return identifier.isascii() and identifier.isdigit()


def parse_version(text: str | None) -> Version:
    """Parse a release version or raise a KmError saying what the accepted form is."""
    raw = "" if text is None else text
    m = VERSION_RE.fullmatch(raw) if raw.isascii() else None
    if not m:
        shown = ascii(raw) if raw else "an empty version"
        raise KmError(f"invalid version {shown}: expected {ACCEPTED_FORM}")
    pre = tuple(m.group(4).split(".")) if m.group(4) else ()
    return Version(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre)
