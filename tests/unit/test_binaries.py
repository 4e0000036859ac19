from __future__ import annotations

import struct
from pathlib import Path

import pytest

from kmrelease.binaries import check_header, contains, detect
from kmrelease.errors import KmError
from kmrelease.matrix import Target


def elf(machine: int) -> bytes:
    return b"\x7fELF\x02\x01\x01" + b"\0" * 11 + struct.pack("<H", machine) + b"\0" * 100


def macho(cpu: int) -> bytes:
    return b"\xcf\xfa\xed\xfe" + struct.pack("<I", cpu) + b"\0" * 100


def pe(machine: int) -> bytes:
    head = bytearray(b"MZ" + b"\0" * 0x7E)
    struct.pack_into("<I", head, 0x3C, 0x80)
    return bytes(head) + b"PE\0\0" + struct.pack("<H", machine) + b"\0" * 64


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (elf(0x3E), ("elf", "amd64")),
        (elf(0xB7), ("elf", "arm64")),
        (macho(0x01000007), ("macho", "amd64")),
        (macho(0x0100000C), ("macho", "arm64")),
        (pe(0x8664), ("pe", "amd64")),
        (pe(0xAA64), ("pe", "arm64")),
        (elf(0x28), ("elf", "unknown(0x28)")),
        (b"#!/bin/sh\necho km\n", None),
    ],
)
def test_detect(tmp_path: Path, data: bytes, expected: tuple[str, str] | None) -> None:
    f = tmp_path / "bin"
    f.write_bytes(data)
    assert detect(f) == expected


def test_check_header_refuses_wrong_cpu(tmp_path: Path) -> None:
    f = tmp_path / "km-darwin-arm64"
    f.write_bytes(macho(0x01000007))
    with pytest.raises(KmError, match="expected a macho/arm64 executable, found macho/amd64"):
        check_header(f, Target("darwin", "arm64"))


def test_contains_across_chunk_edges(tmp_path: Path) -> None:
    f = tmp_path / "blob"
    f.write_bytes(b"x" * ((1 << 20) - 3) + b"v1.2.3" + b"y" * 10)
    assert contains(f, b"v1.2.3")
    assert not contains(f, b"v1.2.4")
