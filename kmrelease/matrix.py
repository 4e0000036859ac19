"""The build matrix (SPEC §1): the one declarative list of platforms."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import KmError


@dataclass(frozen=True)
class Target:
    os: str
    arch: str

    @property
    def slug(self) -> str:
        """``linux/amd64``: the form used by ``--targets``."""
        return f"{self.os}/{self.arch}"

    @property
    def filename(self) -> str:
        return f"km-{self.os}-{self.arch}" + (".exe" if self.os == "windows" else "")

    @property
    def executable_format(self) -> str:
        return {"linux": "elf", "darwin": "macho", "windows": "pe"}[self.os]


TARGETS: tuple[Target, ...] = (
    Target("linux", "amd64"),
    Target("linux", "arm64"),
    Target("darwin", "amd64"),
    Target("darwin", "arm64"),
    Target("windows", "amd64"),
    Target("windows", "arm64"),
)

BY_FILENAME: dict[str, Target] = {t.filename: t for t in TARGETS}


def parse_targets(spec: str | None) -> tuple[Target, ...]:
    """``"linux/amd64,darwin/arm64"`` → targets in matrix order; empty → all."""
    if spec is None or not spec.strip():
        return TARGETS
    by_slug = {t.slug: t for t in TARGETS}
    wanted: set[Target] = set()
    for part in spec.split(","):
        slug = part.strip()
        if slug not in by_slug:
            known = ", ".join(by_slug)
            raise KmError(f"unknown target {slug!r}: expected one of {known}")
        wanted.add(by_slug[slug])
    return tuple(t for t in TARGETS if t in wanted)
