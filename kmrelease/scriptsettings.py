"""The "release settings" block of the install scripts, read strictly and rewritten on publish.

``scripts/install.sh`` and ``scripts/install.ps1`` each hold exactly one block::

    # --- release settings (rewritten by the engine when it publishes this script) ---
    BINARY_NAME="km"                                  $BinaryName = "km"
    GITHUB_REPOSITORY="kilometers-ai/kilometers-cli"  $GithubRepository = "..."
    DEFAULT_BASE_URL="https://get.kilometers.ai"      $DefaultBaseUrl = "..."
    KEY_PRINCIPAL="release@get.kilometers.ai"         $KeyPrincipal = "..."
    TRUSTED_KEYS="<PEM blocks, several lines>"        $TrustedKeys = @"  <PEM lines>  "@
    TRUSTED_SSH_KEYS="<ecdsa-sha2-nistp256 AAAA...>"  (install.sh only)
    # --- end of release settings ---

(install.sh on the left, install.ps1 on the right). ``TRUSTED_SSH_KEYS`` holds the same keys in
OpenSSH form, one line each (install.sh writes its ``allowed_signers`` from them with no
``ssh-keygen -i`` at install time); :func:`render` always derives it from the PEMs and puts
the project's values into the copy a release publishes; anything else in the block (another line,
a missing or repeated name, a quote inside a value) is one clear error, so a changed
script never publishes with stale names.

``trusted_keys_pem=None`` keeps the script's own ``TRUSTED_KEYS``; the signing stage
passes the PEM text of the keys the release trusts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .config import ProjectConfig
from .errors import KmError

BEGIN = "# --- release settings (rewritten by the engine when it publishes this script) ---"
END = "# --- end of release settings ---"
FIELDS = ("binary_name", "github_repository", "default_base_url", "key_principal", "trusted_keys")


@dataclass(frozen=True)
class Dialect:
    names: tuple[str, ...]  # the variable of each field, in FIELDS order
    line: re.Pattern[str]  # one single-line assignment: groups name, value
    keys_open: str  # how the multi-line TRUSTED_KEYS value opens (after "<name> = ")
    keys_close: str  # the line that closes it
    ssh_keys: str = ""  # the variable of the keys in OpenSSH form (install.sh only)

    def assign(self, name: str, value: str) -> str:
        return f'{name}="{value}"' if self is SH else f'{name} = "{value}"'

    def keys(self, name: str, pem: str) -> list[str]:
        body = pem.strip("\n")
        if self is SH:
            return [f'{name}="{body}"', f'{self.ssh_keys}="{openssh_lines(pem)}"']
        return [f'{name} = @"', body, '"@']  # an empty here-string keeps its one (empty) line


SH = Dialect(
    names=("BINARY_NAME", "GITHUB_REPOSITORY", "DEFAULT_BASE_URL", "KEY_PRINCIPAL", "TRUSTED_KEYS"),
    line=re.compile(r'(?P<name>[A-Z_]+)="(?P<value>[^"\\$`]*)"', re.ASCII),
    keys_open='TRUSTED_KEYS="',
    keys_close='"',
    ssh_keys="TRUSTED_SSH_KEYS",
)
_PEM = re.compile(r"-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]*?-----END PUBLIC KEY-----", re.ASCII)


_ASSIGNMENT = re.compile(r'[A-Z_]+="', re.ASCII)  # the next setting: a value left open before it


def openssh_lines(pem: str) -> str:
    """Each P-256 public key of ``pem`` as an OpenSSH line (``ecdsa-sha2-nistp256 AAAA…``), one a line."""
    lines = []
    for block in _PEM.findall(pem):
        try:
            key = serialization.load_pem_public_key(block.encode())
        except ValueError:
            key = None
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise KmError("the trusted keys must be ECDSA P-256 public keys (PEM)")
        lines.append(
            key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
        )
    return "\n".join(lines)


PS1 = Dialect(
    names=("$BinaryName", "$GithubRepository", "$DefaultBaseUrl", "$KeyPrincipal", "$TrustedKeys"),
    line=re.compile(r'(?P<name>\$[A-Za-z]+) = "(?P<value>[^"$`]*)"', re.ASCII),
    keys_open='$TrustedKeys = @"',
    keys_close='"@',
)


def dialect_for(name: str) -> Dialect:
    if name.endswith(".sh"):
        return SH
    if name.endswith(".ps1"):
        return PS1
    raise KmError(f"{name}: not an install script (.sh or .ps1)")


@dataclass(frozen=True)
class Settings:
    binary_name: str
    github_repository: str
    default_base_url: str
    key_principal: str
    trusted_keys: str  # PEM text, "" when none

    @classmethod
    def of(cls, project: ProjectConfig, trusted_keys_pem: str = "") -> Settings:
        host = project.public_host
        if not host:
            raise KmError(
                f"{project.path}: [project] public_base_url is empty: the published install scripts "
                "need the URL users install from"
            )
        return cls(
            binary_name=project.build.binary,
            github_repository=project.github_repository,
            default_base_url=project.public_base_url,
            key_principal=f"release@{host}",
            trusted_keys=trusted_keys_pem,
        )


@dataclass(frozen=True)
class Block:
    start: int  # line index of BEGIN
    end: int  # line index of END
    settings: Settings


def _keys_value(lines: list[str], i: int, d: Dialect, where: str, name: str = "") -> tuple[str, int]:
    """The TRUSTED_KEYS (or ``name``) value starting on line ``i``, and the index after it."""
    name = name or d.names[4]
    first = lines[i]
    if d is SH and (m := d.line.fullmatch(first)) and m.group("name") == name:
        return m.group("value"), i + 1
    opening = f'{name}="' if d is SH else d.keys_open
    if not first.startswith(opening):
        raise KmError(f"{where} line {i + 1}: expected {name}, found {first!r}")
    rest = first[len(opening) :]
    if d is PS1 and rest:
        raise KmError(f"{where} line {i + 1}: nothing may follow {d.keys_open!r}")
    if d is SH and rest.endswith(d.keys_close):
        return _pem_only(rest[: -len(d.keys_close)], i, name, where), i + 1
    body: list[str] = [rest] if rest else []
    j = i + 1
    while j < len(lines) and lines[j] != END and not _ASSIGNMENT.match(lines[j]):
        line = lines[j]
        if d is SH and line.endswith(d.keys_close):
            body.append(line[: -len(d.keys_close)])
            break
        if d is PS1 and line == d.keys_close:
            break
        body.append(line)
        j += 1
    else:
        raise KmError(f"{where} line {i + 1}: {name} is never closed with {d.keys_close!r}")
    return _pem_only("\n".join(body), i, name, where), j + 1


def _pem_only(value: str, i: int, name: str, where: str) -> str:
    if any(c in value for c in '"`$\\'):
        raise KmError(f"{where} line {i + 1}: {name} may hold only PEM text")
    return value


def parse(text: str, name: str) -> Block:
    """Find and read the one release-settings block of a script, strictly."""
    d = dialect_for(name)
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    starts = [i for i, line in enumerate(lines) if line == BEGIN]
    ends = [i for i, line in enumerate(lines) if line == END]
    where = f"{name}: release settings"
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise KmError(f"{where}: need exactly one block from {BEGIN!r} to {END!r}")
    values: list[str] = []
    i = starts[0] + 1
    for var in d.names[:4]:
        m = d.line.fullmatch(lines[i]) if i < ends[0] else None
        if m is None or m.group("name") != var:
            found = lines[i] if i < ends[0] else END
            raise KmError(f'{where} line {i + 1}: expected {var} = "...", found {found!r}')
        values.append(m.group("value"))
        i += 1
    keys, i = _keys_value(lines, i, d, where)
    if d.ssh_keys:
        if i >= ends[0]:
            raise KmError(f'{where} line {i + 1}: expected {d.ssh_keys}="...", found {END!r}')
        _ssh, i = _keys_value(lines, i, d, where, d.ssh_keys)
    if i != ends[0]:
        raise KmError(f"{where} line {i + 1}: unexpected {lines[i]!r} before the end of the block")
    binary, repo, base, principal = values
    return Block(starts[0], ends[0], Settings(binary, repo, base, principal, keys))


def _check_value(field: str, value: str, name: str) -> None:
    if any(c in value for c in '"`$\\\n\r'):
        raise KmError(f"{name}: the release setting {field} {value!r} cannot be written into the script")


def render(text: str, name: str, settings: Settings) -> str:
    """``text`` with its release-settings block holding ``settings`` (a strict parse first)."""
    d = dialect_for(name)
    block = parse(text, name)
    values = [getattr(settings, f) for f in FIELDS[:4]]
    for field, value in zip(FIELDS, values, strict=False):
        _check_value(field, value, name)
    pem = settings.trusted_keys
    if any(c in pem for c in '"`$\\'):
        raise KmError(f"{name}: the trusted keys must be PEM text")
    lines = text.split("\n")
    new_block = [
        BEGIN,
        *(d.assign(var, value) for var, value in zip(d.names, values, strict=False)),
        *d.keys(d.names[4], pem),
        END,
    ]
    eol = "\r" if lines[block.start].endswith("\r") else ""
    new_block = [line + eol for line in "\n".join(new_block).split("\n")]
    return "\n".join(lines[: block.start] + new_block + lines[block.end + 1 :])


def render_for(project: ProjectConfig, text: str, name: str, trusted_keys_pem: str | None = None) -> str:
    """The published copy of an install script for ``project``; ``None`` keeps the script's keys."""
    keys = parse(text, name).settings.trusted_keys if trusted_keys_pem is None else trusted_keys_pem
    return render(text, name, Settings.of(project, keys))
