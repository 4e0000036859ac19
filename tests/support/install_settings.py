"""The "release settings" block of scripts/install.sh and scripts/install.ps1, read as data.

Both scripts start with one block, between fixed marker lines, that the engine rewrites
in the copy it publishes (HELPERS.md, issue 10). Tests read it back from here, and
``with_settings`` writes a copy with other values (throwaway keys, a loopback base URL);
new ``TRUSTED_KEYS`` bring their OpenSSH form in ``TRUSTED_SSH_KEYS`` (as the engine writes
it), keys that are not P-256 PEMs none.
"""

from __future__ import annotations

import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SH = ROOT / "scripts" / "install.sh"
INSTALL_PS1 = ROOT / "scripts" / "install.ps1"
BEGIN = "# --- release settings (rewritten by the engine when it publishes this script) ---\n"
END = "# --- end of release settings ---\n"
SH_NAMES = (
    "BINARY_NAME",
    "GITHUB_REPOSITORY",
    "DEFAULT_BASE_URL",
    "KEY_PRINCIPAL",
    "TRUSTED_KEYS",
    "TRUSTED_SSH_KEYS",
)
PS1_NAMES = ("BinaryName", "GithubRepository", "DefaultBaseUrl", "KeyPrincipal", "TrustedKeys")


def block(text: str) -> str:
    start = text.index(BEGIN) + len(BEGIN)
    return text[start : text.index(END, start)]


def sh_settings(text: str) -> dict[str, str]:
    """``NAME="value"`` assignments (values may span lines; no quotes or `$` inside)."""
    found = dict(re.findall(r'^([A-Z_]+)="([^"$`\\]*)"\n', block(text), re.M))
    assert tuple(found) == SH_NAMES, found
    return found


def ps1_settings(text: str) -> dict[str, str]:
    """``$Name = "value"`` and the ``@" ... "@`` here-string of the trusted keys."""
    body = block(text)
    found = dict(re.findall(r'^\$(\w+) = "([^"$`]*)"\n', body, re.M))
    keys = re.search(r'^\$TrustedKeys = @"\n(.*?)"@\n', body, re.M | re.S)
    assert keys is not None, body
    found["TrustedKeys"] = keys.group(1).removesuffix("\n")
    assert tuple(found) == PS1_NAMES, found
    return found


def pems(text: str) -> list[str]:
    """Each ``PUBLIC KEY`` PEM in a TRUSTED_KEYS value, normalised to end in a newline."""
    pattern = r"-----BEGIN PUBLIC KEY-----\n.*?-----END PUBLIC KEY-----"
    return [m + "\n" for m in re.findall(pattern, text, re.S)]


def ssh_lines(pem_text: str) -> str:
    """The OpenSSH form of each P-256 PEM of ``pem_text``, one a line (other blocks left out)."""
    out = []
    for pem in pems(pem_text):
        try:
            key = serialization.load_pem_public_key(pem.encode())
        except ValueError:
            continue
        if isinstance(key, ec.EllipticCurvePublicKey):
            out.append(key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH))
    return "\n".join(line.decode() for line in out)


def with_sh_settings(text: str, **values: str) -> str:
    """install.sh text with some settings replaced (``TRUSTED_KEYS=...``)."""
    current = sh_settings(text)
    if "TRUSTED_KEYS" in values and "TRUSTED_SSH_KEYS" not in values:
        values = {**values, "TRUSTED_SSH_KEYS": ssh_lines(values["TRUSTED_KEYS"])}
    current.update(values)
    new = "".join(f'{k}="{v}"\n' for k, v in current.items())
    head, _, rest = text.partition(BEGIN)
    return head + BEGIN + new + rest[rest.index(END) :]


def write_install_sh(dest: Path, **values: str) -> Path:
    dest.write_text(with_sh_settings(INSTALL_SH.read_text(), **values))
    return dest
