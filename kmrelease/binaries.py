"""Executable headers: is this file a binary for the target it claims to be?"""

from __future__ import annotations

import struct
from pathlib import Path

from .errors import KmError
from .matrix import Target

_ELF_MACHINE = {"amd64": 0x3E, "arm64": 0xB7}
_MACHO_CPU = {"amd64": 0x01000007, "arm64": 0x0100000C}
_PE_MACHINE = {"amd64": 0x8664, "arm64": 0xAA64}


def detect(path: Path) -> tuple[str, str] | None:
    """``(format, arch)`` of an executable, or None when it is none we know."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head[:4] == b"\x7fELF" and len(head) >= 20:
        if head[4] != 2:
            return ("elf", "32-bit")
        endian = "<" if head[5] == 1 else ">"
        (machine,) = struct.unpack_from(endian + "H", head, 18)
        return ("elf", _name(_ELF_MACHINE, machine))
    if head[:4] == b"\xcf\xfa\xed\xfe" and len(head) >= 8:  # MH_MAGIC_64, little endian
        (cpu,) = struct.unpack_from("<I", head, 4)
        return ("macho", _name(_MACHO_CPU, cpu))
    if head[:2] == b"MZ" and len(head) >= 0x40:
        (pe_off,) = struct.unpack_from("<I", head, 0x3C)
        if pe_off + 6 <= len(head) and head[pe_off : pe_off + 4] == b"PE\0\0":
            (machine,) = struct.unpack_from("<H", head, pe_off + 4)
            return ("pe", _name(_PE_MACHINE, machine))
    return None


def _name(table: dict[str, int], value: int) -> str:
    for arch, code in table.items():
        if code == value:
            return arch
    return f"unknown(0x{value:x})"


def check_header(path: Path, target: Target) -> None:
    """Raise unless ``path`` is an executable of ``target``'s format and CPU."""
    found = detect(path)
    want = (target.executable_format, target.arch)
    if found != want:
        shown = f"{found[0]}/{found[1]}" if found else "not an executable"
        raise KmError(f"{path.name}: expected a {want[0]}/{want[1]} executable, found {shown}")


def contains(path: Path, needle: bytes) -> bool:
    """Whether the file holds ``needle`` (streamed, overlapping chunk edges)."""
    tail = b""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            if needle in tail + chunk:
                return True
            tail = chunk[-len(needle) :]
    return False
