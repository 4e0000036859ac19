"""What a release publishes about its keys: ``/keys/allowed_signers``, ``/keys/release-keys.pem``
(SPEC §13) and the trusted keys written into the published install scripts.

The install scripts' release-settings block holds ``TRUSTED_KEYS`` (install.sh) and
``$TrustedKeys`` (install.ps1); :func:`with_trusted_keys` replaces only that value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ..errors import KmError
from ..scriptsettings import openssh_lines
from ..urlspace import Kind
from .keys import TrustedKey, allowed_signers, pem_bundle

_SH = re.compile(r'^TRUSTED_KEYS="[^"$`\\]*"$', re.M)
_SH_SSH = re.compile(r'^TRUSTED_SSH_KEYS="[^"$`\\]*"$', re.M)
_PS1 = re.compile(r'^\$TrustedKeys = @"(\r?\n)[^"$`]*?"@$', re.M)


def key_documents(trusted: Sequence[TrustedKey], principal: str) -> dict[Kind, bytes]:
    return {
        Kind.ALLOWED_SIGNERS: allowed_signers(trusted, principal).encode(),
        Kind.RELEASE_KEYS: pem_bundle(trusted).encode(),
    }


def with_trusted_keys(text: str, name: str, pem: str) -> str:
    """``text`` (install.sh or install.ps1) with its trusted keys replaced by ``pem`` (install.sh:
    also their OpenSSH form)."""
    body = pem.strip("\n")
    if name.endswith(".sh"):
        rx, new = _SH, f'TRUSTED_KEYS="{body}"'
        if len(_SH_SSH.findall(text)) != 1:
            raise KmError(f"{name}: expected one TRUSTED_SSH_KEYS setting in its release settings block")
        ssh = f'TRUSTED_SSH_KEYS="{openssh_lines(pem)}"'
        text = _SH_SSH.sub(lambda _m: ssh, text)
    else:
        rx = _PS1
        eol = "\r\n" if "\r\n" in text else "\n"
        new = f'$TrustedKeys = @"{eol}{body.replace(chr(10), eol)}{eol}"@'
    found = rx.findall(text)
    if len(found) != 1:
        raise KmError(f"{name}: expected one trusted-keys setting in its release settings block")
    return rx.sub(lambda _m: new, text)


def public_objects(
    trusted: Sequence[TrustedKey], principal: str, scripts: Sequence[tuple[Kind, Path]]
) -> dict[Kind, bytes]:
    """The key documents and the install scripts as this release publishes them."""
    pem = pem_bundle(trusted)
    out = key_documents(trusted, principal)
    for kind, path in scripts:
        out[kind] = with_trusted_keys(path.read_text(encoding="utf-8"), path.name, pem).encode()
    return out
