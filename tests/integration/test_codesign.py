"""The ad-hoc code signature of the darwin/arm64 binary: present, and every page hash right."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from kmrelease.artifacts import Release
from kmrelease.codesign import LC_CODE_SIGNATURE, check_code_signature, read_code_signature
from kmrelease.errors import KmError


@pytest.fixture
def darwin_arm64(release_v1: Release, tmp_path: Path) -> Path:
    src = release_v1.files[0].path.parent / "km-darwin-arm64"
    dst = tmp_path / "km-darwin-arm64"
    shutil.copyfile(src, dst)
    return dst


def test_go_signs_darwin_arm64_ad_hoc_and_every_page_checks(darwin_arm64: Path) -> None:
    sig = check_code_signature(darwin_arm64)
    assert sig.adhoc and sig.page_size == 4096
    assert sig.pages == -(-sig.code_limit // 4096) and sig.pages > 100
    assert sig.identifier  # Go's linker names the image (a.out)


def test_a_changed_page_is_refused(darwin_arm64: Path) -> None:
    data = bytearray(darwin_arm64.read_bytes())
    sig = read_code_signature(bytes(data))
    data[sig.code_limit // 2] ^= 0xFF  # one byte in the middle of the code
    darwin_arm64.write_bytes(data)
    with pytest.raises(
        KmError, match=r"km-darwin-arm64: invalid code signature: page [0-9]+ .* does not match"
    ):
        check_code_signature(darwin_arm64)


def test_a_damaged_signature_is_refused(darwin_arm64: Path) -> None:
    data = bytearray(darwin_arm64.read_bytes())
    sig = read_code_signature(bytes(data))
    cd = data.index((0xFADE0C02).to_bytes(4, "big"), sig.code_limit)  # the CodeDirectory
    (hash_offset,) = struct.unpack_from(">I", data, cd + 16)
    data[cd + hash_offset] ^= 0xFF  # the hash of page 0
    darwin_arm64.write_bytes(data)
    with pytest.raises(KmError, match="page 0 .* does not match"):
        check_code_signature(darwin_arm64)
    data[cd : cd + 4] = b"\0\0\0\0"  # the CodeDirectory itself
    darwin_arm64.write_bytes(data)
    with pytest.raises(KmError, match="CodeDirectory's magic is wrong"):
        check_code_signature(darwin_arm64)


def test_an_unsigned_binary_is_refused(darwin_arm64: Path) -> None:
    data = bytearray(darwin_arm64.read_bytes())
    ncmds, _ = struct.unpack_from("<II", data, 16)
    offset = 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, offset)
        if cmd == LC_CODE_SIGNATURE:
            struct.pack_into("<I", data, offset, 0x7FFFFFFF)  # no longer a code signature command
        offset += size
    darwin_arm64.write_bytes(data)
    with pytest.raises(KmError, match="no LC_CODE_SIGNATURE load command"):
        check_code_signature(darwin_arm64)
    darwin_arm64.write_bytes(b"\x7fELF" + b"\0" * 60)
    with pytest.raises(KmError, match="not a 64-bit little-endian Mach-O"):
        check_code_signature(darwin_arm64)


def test_a_sha256_code_directory_in_an_alternate_slot_is_the_one_checked(darwin_arm64: Path) -> None:
    """codesign with an older deployment target writes a SHA-1 primary CodeDirectory and the
    SHA-256 one in slot 0x1000: the SHA-256 one is checked, page by page."""
    data = bytearray(darwin_arm64.read_bytes())
    sig = read_code_signature(bytes(data))
    blob = data.index((0xFADE0CC0).to_bytes(4, "big"), sig.code_limit)  # the SuperBlob
    (count,) = struct.unpack_from(">I", data, blob + 8)
    slots = [struct.unpack_from(">I", data, blob + 12 + 8 * i)[0] for i in range(count)]
    i = slots.index(0)
    struct.pack_into(">I", data, blob + 12 + 8 * i, 0x1000)  # the CodeDirectory moves to slot 0x1000
    darwin_arm64.write_bytes(data)
    assert check_code_signature(darwin_arm64).pages == sig.pages
    data[sig.code_limit // 3] ^= 0xFF
    darwin_arm64.write_bytes(data)
    with pytest.raises(KmError, match="does not match its hash"):
        check_code_signature(darwin_arm64)
