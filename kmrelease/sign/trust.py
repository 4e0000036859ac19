"""Which keys the binaries of a build trust (the ``{trusted_keys}`` ldflags value).

Always the keys of ``build/keys/``. A local release signing with a key that is not among
them (the development key, or a key file of one's own) adds that key, so its binaries and
install scripts accept what it publishes; a release to Azure must sign with a key of
``build/keys/`` (it refuses otherwise).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ..errors import KmError
from ..httpbounds import is_loopback
from ..ui import Reporter
from .keys import TrustedKey, is_trusted, load_trusted, trusted_keys_value, with_key
from .settings import SigningSettings, build_signer, read_settings
from .signers import Signer


def release_trust(folder: Path, signer: Signer, *, public: bool, reporter: Reporter) -> list[TrustedKey]:
    """The trusted keys (those of ``folder``, build/keys) of a release signed by ``signer`` to a
    destination (``public``: what users install from)."""
    trusted = load_trusted(folder)
    key = signer.public_key()
    if is_trusted(trusted, key):
        return trusted
    if public:
        raise KmError(
            f"{signer.label} is not one of the trusted keys in {folder}: published binaries would "
            "refuse its signatures (`inv keys.export` writes a Key Vault key's public half there)"
        )
    name = "the development key" if signer.development else signer.label
    reporter.info(f"this local release's binaries also trust {name} (not in {folder.name}/)")
    return with_key(trusted, key, name)


def build_trust(root: Path, config_file: Path | None, settings: SigningSettings | None = None) -> str:
    """The ``{trusted_keys}`` value of a plain ``inv build``: build/keys plus a local signing key."""
    s = settings if settings is not None else read_settings(config_file)
    trusted = load_trusted(s.keys_path(root))
    local = build_signer(s, root)
    if local is not None:
        trusted = with_key(trusted, local.public_key(), local.label)
    return trusted_keys_value(trusted)


def verify_trust(root: Path, config_file: Path | None, base_url: str) -> list[TrustedKey]:
    """The keys a standalone ``inv verify`` checks the signatures with, as ``inv release``'s verify
    step does: build/keys, plus, for a local site (a loopback base URL), the key a local release
    signs with (the configured key file, or the development key once made)."""
    s = read_settings(config_file)
    trusted = load_trusted(s.keys_path(root))
    if is_loopback(urlsplit(base_url).hostname or ""):
        local = build_signer(s, root)
        if local is not None:
            name = "the development key" if local.development else local.label
            trusted = with_key(trusted, local.public_key(), name)
    return trusted
