"""The release configuration of the repository being released (``build/release.toml``, SPEC §12).

The project root is the nearest directory, from the current directory upward, that
holds ``build/release.toml``; ``KM_RELEASE_CONFIG`` names another file (the root is
then ``<root>`` when the file is ``<root>/build/release.toml``, else the current
directory). Every path is relative to the root, never to where the engine is
installed. A missing or invalid file is one :class:`KmError` line saying where it
looked and what is wrong.

The API::

    project = load_project()                 # ProjectConfig (frozen), strictly validated
    project.root, project.path               # the repository, its configuration file
    project.github_repository, project.public_base_url
    project.build                            # BuildConfig: main, binary, targets, ldflags, ...
    project.build.file_name(target)          # "km-linux-amd64", "hello-windows-arm64.exe"
    project.azure                            # AzureConfig

The checks that need Go (``main`` is a main package, every target is one Go
supports) are :func:`kmrelease.gocheck.check_build_config`, run before anything is built.
"""

from __future__ import annotations

import os
import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import KmError
from .matrix import TARGETS, Target

CONFIG_ENV = "KM_RELEASE_CONFIG"
BASE_URL_ENV = "KM_BASE_URL"
CONFIG_FILE = Path("build") / "release.toml"

# Placeholders of the [build] templates. {trusted_keys} and {install_method} are filled by
# the signing and packaging stages (see kmrelease.context.BuildValues).
PLACEHOLDERS = ("binary", "version", "commit", "date", "os", "arch", "trusted_keys", "install_method")
VERSION_OUTPUT_PLACEHOLDERS = tuple(p for p in PLACEHOLDERS if p != "trusted_keys")
RESERVED_ENV = ("CGO_ENABLED", "GOOS", "GOARCH")
# Tables that other stages read and check themselves (kmrelease.sign.settings, kmrelease.packages.settings).
STAGE_TABLES = ("signing", "packages")

DEFAULT_LDFLAGS = ("-X main.Version={version}", "-X main.Commit={commit}", "-X main.Date={date}")
DEFAULT_VERSION_OUTPUT = "{binary} {version} ({commit}, {date}, {os}/{arch})"

_BINARY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*", re.ASCII)
_TARGET_RE = re.compile(r"([a-z0-9]+)/([a-z0-9]+)", re.ASCII)
_ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_REPO_RE = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", re.ASCII)


@dataclass(frozen=True)
class AzureConfig:
    storage_account: str = ""
    storage_account_url: str = ""
    subscription_id: str = ""
    resource_group: str = ""
    frontdoor_profile: str = ""
    frontdoor_endpoint: str = ""
    custom_domains: tuple[str, ...] = ()

    @property
    def account_url(self) -> str:
        if self.storage_account_url:
            return self.storage_account_url.rstrip("/")
        if self.storage_account:
            return f"https://{self.storage_account}.blob.core.windows.net"
        return ""

    @property
    def has_frontdoor(self) -> bool:
        return all(
            (self.subscription_id, self.resource_group, self.frontdoor_profile, self.frontdoor_endpoint)
        )


@dataclass(frozen=True)
class BuildConfig:
    """The ``[build]`` table; the defaults build this repository's ``km`` exactly as before."""

    main: str = "./cmd/km"
    binary: str = "km"
    targets: tuple[Target, ...] = TARGETS
    ldflags: tuple[str, ...] = DEFAULT_LDFLAGS
    tags: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # sorted (name, value) pairs
    version_args: tuple[str, ...] = ("--version",)
    version_output: str = DEFAULT_VERSION_OUTPUT
    version_check: bool = True

    def file_name(self, target: Target) -> str:
        """``<binary>-<os>-<arch>[.exe]`` (SPEC §1)."""
        return target.file_name(self.binary)

    @property
    def file_names(self) -> list[str]:
        return [self.file_name(t) for t in self.targets]

    def target_of(self, file_name: str) -> Target | None:
        return next((t for t in self.targets if self.file_name(t) == file_name), None)

    def parse_targets(self, spec: str | None) -> tuple[Target, ...]:
        """``"linux/amd64,darwin/arm64"`` → configured targets in order; empty → all."""
        if spec is None or not spec.strip():
            return self.targets
        by_slug = {t.slug: t for t in self.targets}
        wanted: set[Target] = set()
        for part in spec.split(","):
            slug = part.strip()
            if slug not in by_slug:
                raise KmError(f"unknown target {slug!r}: expected one of {', '.join(by_slug)}")
            wanted.add(by_slug[slug])
        return tuple(t for t in self.targets if t in wanted)


@dataclass(frozen=True)
class ProjectConfig:
    root: Path
    path: Path
    github_repository: str = "kilometers-ai/kilometers-cli"
    public_base_url: str = ""
    build: BuildConfig = field(default_factory=BuildConfig)
    azure: AzureConfig = field(default_factory=AzureConfig)

    @property
    def public_host(self) -> str:
        """The host of ``public_base_url`` (``get.kilometers.ai``), or ``""``."""
        from urllib.parse import urlsplit

        return urlsplit(self.public_base_url).hostname or ""


ReleaseConfig = ProjectConfig  # the former name, for code not yet moved to the context


# --- finding the file ---------------------------------------------------------------


def find_config(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> tuple[Path, Path]:
    """``(root, config file)``, or one error saying where it looked."""
    env = os.environ if environ is None else environ
    here = (cwd or Path.cwd()).absolute()
    named = env.get(CONFIG_ENV, "").strip()
    if named:
        path = (here / named).absolute()
        if not path.is_file():
            raise KmError(f"{CONFIG_ENV}={named}: no such file (looked for {path})")
        is_std = path.parent.name == CONFIG_FILE.parent.name and path.name == CONFIG_FILE.name
        return (path.parent.parent if is_std else here), path
    for directory in (here, *here.parents):
        if (directory / CONFIG_FILE).is_file():
            return directory, directory / CONFIG_FILE
    raise KmError(
        f"no {CONFIG_FILE.as_posix()} in {here} or any directory above it: run from the repository "
        f"being released, or set {CONFIG_ENV}"
    )


def load_project(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> ProjectConfig:
    root, path = find_config(cwd, environ)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KmError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise KmError(f"{path}: not valid TOML: {exc}") from None
    return parse_project(data, root, path)


def load_config(path: Path | None = None) -> ProjectConfig:
    """The project configuration (``path`` given: that file, the root found from the cwd)."""
    if path is None:
        return load_project()
    env = {**os.environ, CONFIG_ENV: str(path)}
    return load_project(environ=env)


def public_base_url(
    project: ProjectConfig, explicit: str | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """Where a release is verified: ``explicit``, else ``$KM_BASE_URL``, else ``public_base_url``."""
    env = os.environ if environ is None else environ
    return explicit or env.get(BASE_URL_ENV) or project.public_base_url or None


# --- validation ---------------------------------------------------------------------


class _Table:
    """One TOML table being read: every read key is ticked off; leftovers are unknown keys."""

    def __init__(self, path: Path, name: str, data: object) -> None:
        self.path, self.name = path, name
        if not isinstance(data, dict):
            self.fail(f"[{name}] must be a table")
        self.data: dict[str, Any] = dict(data)  # type: ignore[call-overload]

    def fail(self, what: str) -> None:
        raise KmError(f"{self.path}: {what}")

    def key_error(self, key: str, what: str) -> None:
        self.fail(f"[{self.name}] {key}: {what}")

    def string(self, key: str, default: str) -> str:
        value = self.data.pop(key, default)
        if not isinstance(value, str):
            self.key_error(key, f"must be a string, not {type(value).__name__}")
        return str(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.pop(key, default)
        if not isinstance(value, bool):
            self.key_error(key, "must be true or false")
        return bool(value)

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.data.pop(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.key_error(key, "must be a list of strings")
        return tuple(value)

    def mapping(self, key: str) -> dict[str, str]:
        value = self.data.pop(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            self.key_error(key, 'must be a table of strings, e.g. { GOFLAGS = "-mod=mod" }')
        return dict(value)

    def done(self) -> None:
        if self.data:
            unknown = ", ".join(sorted(self.data))
            self.fail(f"[{self.name}] has unknown key(s): {unknown}")


def check_template(table: _Table, key: str, template: str, allowed: tuple[str, ...]) -> None:
    """Every ``{name}`` of ``template`` must be a known placeholder (``{{``/``}}`` are literal braces)."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        table.key_error(key, f"{template!r} is not a valid template: {exc}")
        return
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            table.key_error(
                key,
                f"unknown placeholder {{{name}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}} in {template!r} (known: "
                + ", ".join("{" + p + "}" for p in allowed)
                + ")",
            )


def _targets(table: _Table) -> tuple[Target, ...]:
    slugs = table.strings("targets", tuple(t.slug for t in TARGETS))
    if not slugs:
        table.key_error("targets", "must name at least one target")
    out: list[Target] = []
    for slug in slugs:
        m = _TARGET_RE.fullmatch(slug)
        if not m:
            table.key_error("targets", f"{slug!r} is not <os>/<arch>, e.g. linux/amd64")
            continue
        target = Target(m.group(1), m.group(2))
        if target in out:
            table.key_error("targets", f"{slug} is listed twice")
        out.append(target)
    return tuple(out)


def _main_package(table: _Table) -> str:
    main = table.string("main", BuildConfig.main)
    parts = main.split("/")
    if not main.startswith("./") and main != ".":
        table.key_error("main", f"{main!r} must be a path relative to the module root, like ./cmd/km")
    if any(p == ".." for p in parts) or "\\" in main or "..." in main:
        table.key_error("main", f"{main!r} must name one package inside the module")
    return main


def parse_build(table: _Table) -> BuildConfig:
    main = _main_package(table)
    binary = table.string("binary", BuildConfig.binary)
    if not _BINARY_RE.fullmatch(binary) or binary.lower().endswith(".exe"):
        table.key_error("binary", f"{binary!r} is not a plain file name (letters, digits, . _ -; no .exe)")
    targets = _targets(table)
    ldflags = table.strings("ldflags", DEFAULT_LDFLAGS)
    for flag in ldflags:
        check_template(table, "ldflags", flag, PLACEHOLDERS)
    tags = table.strings("tags", ())
    for tag in tags:
        if not tag or "," in tag or " " in tag:
            table.key_error("tags", f"{tag!r} is not one build tag")
    env = table.mapping("env")
    for name in env:
        if name in RESERVED_ENV:
            table.key_error("env", f"{name} is set by the engine (CGO_ENABLED=0, GOOS/GOARCH per target)")
        if not _ENV_RE.fullmatch(name):
            table.key_error("env", f"{name!r} is not an environment variable name")
    version_args = table.strings("version_args", BuildConfig.version_args)
    version_output = table.string("version_output", DEFAULT_VERSION_OUTPUT)
    check_template(table, "version_output", version_output, VERSION_OUTPUT_PLACEHOLDERS)
    version_check = table.boolean("version_check", True)
    if version_check and not version_output.startswith("{binary} {version}"):
        table.key_error(
            "version_output",
            f"{version_output!r} must start with '{{binary}} {{version}}': the install scripts check "
            "that line before they replace anything",
        )
    table.done()
    return BuildConfig(
        main=main,
        binary=binary,
        targets=targets,
        ldflags=ldflags,
        tags=tags,
        env=tuple(sorted(env.items())),
        version_args=version_args,
        version_output=version_output,
        version_check=version_check,
    )


def _parse_azure(table: _Table) -> AzureConfig:
    values = {k: table.string(k, "") for k in AzureConfig.__dataclass_fields__ if k != "custom_domains"}
    domains = table.strings("custom_domains", ())
    table.done()
    return AzureConfig(**values, custom_domains=domains)


def parse_project(data: dict[str, Any], root: Path, path: Path) -> ProjectConfig:
    top = _Table(path, "top level", data)
    project = _Table(path, "project", top.data.pop("project", {}))
    repo = project.string("github_repository", ProjectConfig.github_repository)
    if not _REPO_RE.fullmatch(repo):
        project.key_error("github_repository", f"{repo!r} is not <owner>/<name>")
    base = project.string("public_base_url", "")
    if base and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", base, re.ASCII):
        project.key_error("public_base_url", f"{base!r} is not an http(s) URL")
    project.done()
    build = parse_build(_Table(path, "build", top.data.pop("build", {})))
    azure = _parse_azure(_Table(path, "azure", top.data.pop("azure", {})))
    for name in STAGE_TABLES:
        _Table(path, name, top.data.pop(name, {}))  # a table; its keys are its stage's to check
    if top.data:
        known = ", ".join(("project", "build", "azure", *STAGE_TABLES))
        top.fail(f"unknown table(s) or key(s): {', '.join(sorted(top.data))} (known: {known})")
    return ProjectConfig(root, path, repo, base.rstrip("/"), build, azure)
