"""``inv keys.export``: write a Key Vault key's public half into ``build/keys/`` (key rotation).

Rotation (README.md, "Signed releases"): create the next key in Key Vault, export it here
as the *next* key and release with the current one (every km and install script from then
on trusts both); then switch ``KM_SIGNING_KEY`` to the next key; later, remove the retired
key's file, so releases built after that no longer trust it.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import KmError
from ..ui import Reporter
from .keys import load_public_key, public_pem
from .signers import Signer

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)


def export_public_key(signer: Signer, folder: Path, name: str, reporter: Reporter, *, dry_run: bool) -> Path:
    """Write ``folder/<name>.pem`` (PEM SubjectPublicKeyInfo) for ``signer``; never replace another key."""
    stem = name.removesuffix(".pem")
    if not _NAME.fullmatch(stem):
        raise KmError(f"key name {name!r}: letters, digits, '.', '_' and '-' only")
    path = folder / f"{stem}.pem"
    pem = public_pem(signer.public_key())
    if path.exists():
        existing = public_pem(load_public_key(path))
        if existing == pem:
            reporter.info(f"{path} already holds this key")
            return path
        raise KmError(f"{path} holds another key: choose another name (keys are never replaced in place)")
    for other in sorted(folder.glob("*.pem")):
        if public_pem(load_public_key(other)) == pem:
            raise KmError(f"{other} already holds this key")
    if dry_run:
        reporter.info(f"would write {path} (the public key of {signer.label})")
        return path
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(pem, encoding="ascii")
    reporter.step(f"wrote {path}: commit it, then release (km and the install scripts trust it from then on)")
    return path
