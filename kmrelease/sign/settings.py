"""Which signer a release uses.

In order: ``KM_SIGNING_KEY`` (a PEM key file, or a Key Vault key id
``https://<vault>.vault.azure.net/keys/<name>/<version>``), then the ``[signing]`` table of
``build/release.toml`` (``key_file`` relative to the project root, or ``key_vault_key``);
with neither, a local release signs with the development key (made on first use) and a
release to Azure refuses.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import KmError
from ..ui import Reporter
from .keys import KEYS_DIR
from .signers import DEV_KEY, KeyFileSigner, Signer, development_key

ENV = "KM_SIGNING_KEY"


@dataclass(frozen=True)
class SigningSettings:
    key_file: str = ""
    key_vault_key: str = ""
    source: str = ""  # where the key setting came from, for messages
    keys_dir: str = ""  # the trusted public keys (default build/keys), relative to the project root

    @property
    def configured(self) -> bool:
        return bool(self.key_file or self.key_vault_key)

    def keys_path(self, root: Path) -> Path:
        path = Path(self.keys_dir or KEYS_DIR).expanduser()
        return path if path.is_absolute() else root / path


# the release key's, then the Authenticode stage's (kmrelease/authenticode.py)
SIGNING_KEYS = (
    "key_file",
    "key_vault_key",
    "keys_dir",
    "authenticode_cert",
    "authenticode_key",
    "authenticode_keyvault",
    "authenticode_timestamp_url",
)


def signing_table(config_file: Path | None) -> dict[str, object]:
    """``[signing]`` of the release configuration (empty without one); unknown keys refused."""
    if config_file is None or not config_file.is_file():
        return {}
    try:
        table = tomllib.loads(config_file.read_text(encoding="utf-8")).get("signing", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise KmError(f"cannot read release configuration {config_file}: {exc}") from None
    if not isinstance(table, dict):
        raise KmError(f"{config_file}: [signing] must be a table")
    unknown = sorted(set(table) - set(SIGNING_KEYS))
    if unknown:
        raise KmError(f"{config_file}: [signing] has unknown keys {unknown} ({', '.join(SIGNING_KEYS)})")
    return table


def read_settings(config_file: Path | None) -> SigningSettings:
    table = signing_table(config_file)
    keys_dir = str(table.get("keys_dir", ""))
    env = os.environ.get(ENV, "").strip()
    if env:
        if env.startswith("https://"):
            return SigningSettings(key_vault_key=env, source=ENV, keys_dir=keys_dir)
        return SigningSettings(key_file=env, source=ENV, keys_dir=keys_dir)
    s = SigningSettings(
        str(table.get("key_file", "")), str(table.get("key_vault_key", "")), "[signing]", keys_dir
    )
    if s.key_file and s.key_vault_key:
        raise KmError(f"{config_file}: [signing] gives both key_file and key_vault_key: choose one")
    return s


def configured_signer(settings: SigningSettings, root: Path) -> Signer | None:
    if settings.key_vault_key:
        from ..extras import needs_extra

        with needs_extra("azure", "signing with a Key Vault key"):
            from .keyvault import KeyVaultSigner

            return KeyVaultSigner(settings.key_vault_key)
    if settings.key_file:
        path = Path(settings.key_file).expanduser()
        path = path if path.is_absolute() else root / path
        return KeyFileSigner(path, development=path.resolve() == (root / DEV_KEY).resolve())
    return None


def release_signer(
    settings: SigningSettings, root: Path, *, public: bool, where: str, reporter: Reporter
) -> Signer:
    """The signer of a release to a destination (``where``, for messages): the configured key, else
    the development key, which only a destination that is not ``public`` (a local site) accepts."""
    signer = configured_signer(settings, root)
    if signer is None and public:
        raise KmError(
            f"{where} refuses to publish unsigned: configure the release key "
            f"([signing] key_vault_key in build/release.toml, or {ENV})"
        )
    if signer is None:
        dev, created = development_key(root, create=True)
        assert dev is not None
        made = "made now" if created else "made earlier"
        reporter.info(f"no signing key configured: signing with the development key {DEV_KEY} ({made})")
        signer = dev
    if signer.development and public:
        raise KmError(f"{where} refuses to publish with the development key {DEV_KEY}")
    return signer


def build_signer(settings: SigningSettings, root: Path) -> Signer | None:
    """The key a plain ``inv build`` also trusts: the configured key file, or an existing development key.

    A Key Vault key is not read here (builds need no Azure access); its public key must be in
    build/keys/ anyway.
    """
    if settings.key_vault_key:
        return None
    if settings.key_file:
        return configured_signer(settings, root)
    return development_key(root, create=False)[0]
