"""What the package formats say about the project: names, people, repositories.

Defaults are km's; ``[packages]`` in ``build/release.toml`` overrides any of them, so
another Go CLI that adopts the engine names its own packages there.
"""

from __future__ import annotations

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
    keyring_name: str = "kilometers-archive-keyring.gpg"
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


def load_settings(config: ReleaseConfig | None = None) -> PackageSettings:
    config = config or load_config()
    base = PackageSettings(
        binary=config.build.binary,
        formula=config.build.binary,
        homepage=f"https://github.com/{config.github_repository}",
        base_url=(config.public_base_url or DEFAULT_BASE_URL).rstrip("/"),
    )
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
    return replace(base, **table)
