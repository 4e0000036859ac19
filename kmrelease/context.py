"""The release context: one frozen object handed to every stage of a release.

A stage is a function ``stage(ctx: ReleaseContext, ...)``. It reads what it needs
from the context, never from module globals, and decides itself whether it runs
(a stage that skips says so and why, in one ``ctx.reporter.info`` line).

The API (small on purpose)::

    ctx = ReleaseContext.create(project, version, reporter, dest=dest, dry_run=...)
    ctx.project                  # ProjectConfig: root, names, [build], [azure] (kmrelease.config)
    ctx.build                    # = ctx.project.build (binary, targets, ldflags, version check...)
    ctx.version, ctx.reporter
    ctx.dist                     # dist/<version>/ ($KM_DIST_DIR or <root>/dist)
    ctx.dest                     # the Destination, or None for build-only tasks
    ctx.dry_run, ctx.force, ctx.promote, ctx.skip_purge
    ctx.trusted_keys             # DER SubjectPublicKeyInfo of each key the binaries trust (None:
                                 # not chosen: a build takes build/keys/ plus a local signing key)
    ctx.trusted_keys_pem         # the same as PEM text (published install scripts), None: not chosen
    ctx.file_name(target)        # "<binary>-<os>-<arch>[.exe]"
    ctx.replace(trusted_keys=(...,))   # a stage adding what later stages use: a new context
    ctx.build_values(target, info, variant)   # the placeholder values of [build] templates

Filling the extension placeholders of ``[build] ldflags``:

- ``{trusted_keys}``: the release's signing plan sets ``ctx.replace(trusted_keys=keys)``
  before the build (``kmrelease.sign.release``); the value is the comma-separated standard
  base64 of each key (empty when there is none); the published install scripts get the
  same keys as PEM.
- ``{install_method}``: a package build is ``build(ctx, variant=BuildVariant("apt"))``;
  it goes into ``ctx.variant_dir(variant)`` (``dist/<v>/.build/variants/apt/``),
  never into the release's own file set. Release binaries have ``""``.

What differs per destination is asked of the destination (``ctx.dest.cdn``,
``ctx.dest.verify_url()``, ``ctx.dest.mirrors_to_github``), never its name.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import BuildConfig, ProjectConfig
from .layout import BUILD_META
from .matrix import Target
from .ui import Reporter
from .version import Version

if TYPE_CHECKING:
    from .build import BuildInfo
    from .destinations import Destination

DIST_ENV = "KM_DIST_DIR"
INSTALL_METHODS = ("", "apt", "brew", "scoop", "winget")


@dataclass(frozen=True)
class BuildVariant:
    """Which build of the binaries: the release's own (``""``) or a package manager's."""

    install_method: str = ""

    def __post_init__(self) -> None:
        if self.install_method not in INSTALL_METHODS:
            raise ValueError(f"unknown install method {self.install_method!r}")

    @property
    def is_release(self) -> bool:
        return not self.install_method


RELEASE = BuildVariant()


def dist_root(project: ProjectConfig, environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(DIST_ENV) or project.root / "dist").absolute()


@dataclass(frozen=True)
class ReleaseContext:
    project: ProjectConfig
    version: Version
    reporter: Reporter
    dist_root: Path
    dest: Destination | None = None
    dry_run: bool = False
    force: bool = False
    promote: bool = False
    skip_purge: bool = False
    trusted_keys: tuple[bytes, ...] | None = None  # None: not chosen yet (build: build/keys/ + local key)

    @classmethod
    def create(
        cls, project: ProjectConfig, version: Version, reporter: Reporter, **kw: Any
    ) -> ReleaseContext:
        """A context whose dist root is ``$KM_DIST_DIR`` or ``<root>/dist`` (unless given)."""
        kw.setdefault("dist_root", dist_root(project))
        return cls(project, version, reporter, **kw)

    def replace(self, **changes: Any) -> ReleaseContext:
        return dataclasses.replace(self, **changes)

    @property
    def build(self) -> BuildConfig:
        return self.project.build

    @property
    def dist(self) -> Path:
        return self.dist_root / str(self.version)

    def file_name(self, target: Target) -> str:
        return self.build.file_name(target)

    def variant_dir(self, variant: BuildVariant) -> Path:
        """Where a variant's binaries go: ``dist/<v>/`` for the release, else a hidden folder."""
        if variant.is_release:
            return self.dist
        return self.dist / BUILD_META / "variants" / variant.install_method

    @property
    def trusted_keys_value(self) -> str:
        return ",".join(base64.b64encode(k).decode("ascii") for k in self.trusted_keys or ())

    @property
    def trusted_keys_pem(self) -> str | None:
        """The trusted keys as PEM ``PUBLIC KEY`` blocks (RFC 7468), or None when none were set."""
        if not self.trusted_keys:
            return None
        blocks = []
        for der in self.trusted_keys:
            b64 = base64.b64encode(der).decode("ascii")
            body = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
            blocks.append(f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----")
        return "\n".join(blocks)

    def build_values(
        self, target: Target, info: BuildInfo, variant: BuildVariant = RELEASE
    ) -> dict[str, str]:
        """The values of every ``[build]`` placeholder for one target."""
        return {
            "binary": self.build.binary,
            "version": info.version,
            "commit": info.commit or "none",
            "date": info.date,
            "os": target.os,
            "arch": target.arch,
            "trusted_keys": self.trusted_keys_value,
            "install_method": variant.install_method,
        }
