"""The project's release configuration (``build/release.toml``)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import KmError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "build" / "release.toml"


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
class ReleaseConfig:
    github_repository: str = "kilometers-ai/kilometers-cli"
    public_base_url: str = ""
    azure: AzureConfig = field(default_factory=AzureConfig)
    path: Path | None = None


def config_path() -> Path:
    return Path(os.environ.get("KM_RELEASE_CONFIG") or DEFAULT_CONFIG)


def load_config(path: Path | None = None) -> ReleaseConfig:
    path = path or config_path()
    if not path.exists():
        return ReleaseConfig(path=None)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise KmError(f"cannot read release configuration {path}: {exc}") from None
    project = data.get("project", {})
    az = data.get("azure", {})
    azure = AzureConfig(
        **{k: str(az.get(k, "")) for k in AzureConfig.__dataclass_fields__ if k != "custom_domains"},
        custom_domains=tuple(str(d) for d in az.get("custom_domains", ())),
    )
    return ReleaseConfig(
        github_repository=str(project.get("github_repository", ReleaseConfig.github_repository)),
        public_base_url=str(project.get("public_base_url", "")),
        azure=azure,
        path=path,
    )
