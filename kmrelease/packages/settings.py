"""What the package formats say about the project: names, people, repositories.

:func:`load_settings` derives every name from the project's own configuration (the binary
name of ``[build]``, the owner and name of ``github_repository``, the host of
``public_base_url``): a Go CLI that adopts the engine gets packages named after itself, never
after km. ``[packages]`` in ``build/release.toml`` overrides any of them (this repository's
table holds km's names). The dataclass's own defaults are km's (tests build settings from them).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields, replace
from urllib.parse import urlsplit

from ..config import ReleaseConfig, load_config
from ..errors import KmError

DEFAULT_BASE_URL = "https://get.kilometers.ai"


@dataclass(frozen=True)
class PackageSettings:
    binary: str = "km"
    package: str = "kilometers-cli"  # the Debian package
    summary: str = "Kilometers CLI: a recording proxy for MCP servers"
    long_description: str = (
        "km runs a Model Context Protocol server as a transparent proxy and records\n"
        "every JSON-RPC message it relays (time, direction, kind, method, id, size)\n"
        "to a log file, without changing a byte of the traffic."
    )
    maintainer: str = "Kilometers <release@get.kilometers.ai>"
    copyright_holder: str = "Kilometers"
    license_text: str = "other\n See the project's repository for the license terms."
    homepage: str = "https://github.com/kilometers-ai/kilometers-cli"
    base_url: str = DEFAULT_BASE_URL  # where packages point: the public base URL
    keyring_name: str = "kilometers-archive-keyring.gpg"  # unused: the URL space fixes the keyring path
    apt_origin: str = "Kilometers"
    apt_label: str = "Kilometers"
    formula: str = "km"
    tap_repository: str = "kilometers-ai/homebrew-tap"
    scoop_repository: str = "kilometers-ai/scoop-bucket"
    winget_identifier: str = "KilometersAI.km"
    winget_publisher: str = "Kilometers"
    winget_repository: str = "microsoft/winget-pkgs"

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or "localhost"


_DEB_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+", re.ASCII)  # Debian Policy 5.6.1


def debian_name(name: str, fallback: str) -> str:
    """``name`` as a Debian package name (lower case, ``_`` → ``-``), else ``fallback``'s."""
    for candidate in (name, fallback):
        deb = candidate.lower().replace("_", "-")
        if _DEB_NAME.fullmatch(deb):
            return deb
    return "cli"


def project_defaults(config: ReleaseConfig, base_url: str | None = None) -> PackageSettings:
    """Every name from the project's configuration: the binary, ``<owner>/<name>`` of its GitHub
    repository, the host of its public base URL (``base_url`` when ``[packages]`` sets it)."""
    owner, _, repo_name = config.github_repository.partition("/")
    binary = config.build.binary
    base_url = (base_url or config.public_base_url).rstrip("/")
    host = urlsplit(base_url).hostname
    if not host:
        raise KmError(
            f"{config.path}: [project] public_base_url is empty: the packages point at the URL "
            "users install from (or set [packages] base_url)"
        )
    package = debian_name(repo_name, binary)
    return PackageSettings(
        binary=binary,
        package=package,
        summary=f"{binary} command-line tool (github.com/{config.github_repository})",
        long_description=(
            f"{binary} is built from https://github.com/{config.github_repository}\n"
            f"and released to {base_url}."
        ),
        maintainer=f"{owner} <release@{host}>",
        copyright_holder=owner,
        homepage=f"https://github.com/{config.github_repository}",
        base_url=base_url,
        keyring_name=f"{package}-archive-keyring.gpg",
        apt_origin=owner,
        apt_label=owner,
        formula=binary,
        tap_repository=f"{owner}/homebrew-tap",
        scoop_repository=f"{owner}/scoop-bucket",
        winget_identifier=f"{owner}.{binary}",
        winget_publisher=owner,
    )


def load_settings(config: ReleaseConfig | None = None) -> PackageSettings:
    config = config or load_config()
    try:
        table = tomllib.loads(config.path.read_text(encoding="utf-8")).get("packages", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise KmError(f"cannot read {config.path}: {exc}") from None
    known = {f.name for f in fields(PackageSettings)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise KmError(f"{config.path}: [packages] has unknown keys {unknown}; known: {sorted(known)}")
    bad = sorted(k for k, v in table.items() if not isinstance(v, str) or not v.strip())
    if bad:
        raise KmError(f"{config.path}: [packages] {', '.join(bad)} must be non-empty strings")
    settings = replace(project_defaults(config, table.get("base_url")), **table)
    return replace(settings, base_url=settings.base_url.rstrip("/"))
