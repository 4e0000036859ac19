"""The build matrix (SPEC §1): the one declarative list of default platforms.

A project's ``[build] targets`` (``kmrelease.config``) chooses from what Go supports;
with none, it is :data:`TARGETS`. File names come from the configured binary name:
``target.file_name("km")`` → ``km-linux-amd64``.
"""

from __future__ import annotations

from dataclasses import dataclass

# What the engine can check in a built file's header (binaries.py): OS → format, and CPUs.
EXECUTABLE_FORMATS = {"linux": "elf", "darwin": "macho", "windows": "pe"}
CHECKED_ARCHES = ("amd64", "arm64")


@dataclass(frozen=True)
class Target:
    os: str
    arch: str

    @property
    def slug(self) -> str:
        """``linux/amd64``: the form used by ``--targets`` and ``[build] targets``."""
        return f"{self.os}/{self.arch}"

    def file_name(self, binary: str) -> str:
        """``<binary>-<os>-<arch>[.exe]``."""
        return f"{binary}-{self.os}-{self.arch}" + (".exe" if self.os == "windows" else "")

    @property
    def executable_format(self) -> str:
        return EXECUTABLE_FORMATS[self.os]

    @property
    def checkable(self) -> bool:
        """Whether the engine knows this target's executable header (format and CPU)."""
        return self.os in EXECUTABLE_FORMATS and self.arch in CHECKED_ARCHES


TARGETS: tuple[Target, ...] = (
    Target("linux", "amd64"),
    Target("linux", "arm64"),
    Target("darwin", "amd64"),
    Target("darwin", "arm64"),
    Target("windows", "amd64"),
    Target("windows", "arm64"),
)
