"""The ad-hoc code signature of a darwin/arm64 binary (macOS kills unsigned arm64 code).

Go's linker signs darwin/arm64 executables ad hoc: an ``LC_CODE_SIGNATURE`` load command
points at a SuperBlob (big-endian) whose CodeDirectory holds one SHA-256 hash per 4 KiB
page of the file up to the signature. :func:`check_code_signature` finds it and recomputes
every page hash, so a binary altered after linking (or whose signature is damaged) is a
failed build, not a binary macOS refuses to run on a user's machine.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

from .errors import KmError

LC_CODE_SIGNATURE = 0x1D
MH_MAGIC_64 = 0xFEEDFACF
CSMAGIC_EMBEDDED_SIGNATURE = 0xFADE0CC0
CSMAGIC_CODEDIRECTORY = 0xFADE0C02
CSSLOT_CODEDIRECTORY = 0
CSSLOT_ALTERNATE_CODEDIRECTORIES = range(0x1000, 0x1005)  # codesign's SHA-256 beside a SHA-1 one
CS_HASHTYPE_SHA256 = 2
CS_ADHOC = 0x2


@dataclass(frozen=True)
class CodeSignature:
    pages: int
    page_size: int
    code_limit: int
    adhoc: bool
    identifier: str


def _signature_range(data: bytes) -> tuple[int, int]:
    """``(dataoff, datasize)`` of the LC_CODE_SIGNATURE command of a 64-bit Mach-O file."""
    if len(data) < 32 or struct.unpack_from("<I", data, 0)[0] != MH_MAGIC_64:
        raise ValueError("not a 64-bit little-endian Mach-O file")
    ncmds, sizeofcmds = struct.unpack_from("<II", data, 16)
    offset, end = 32, 32 + sizeofcmds
    for _ in range(ncmds):
        if offset + 8 > end:
            raise ValueError("load commands run past their declared size")
        cmd, cmdsize = struct.unpack_from("<II", data, offset)
        if cmd == LC_CODE_SIGNATURE:
            dataoff, datasize = struct.unpack_from("<II", data, offset + 8)
            if dataoff + datasize > len(data):
                raise ValueError("the code signature runs past the end of the file")
            return dataoff, datasize
        if cmdsize < 8:
            raise ValueError("a load command is smaller than its header")
        offset += cmdsize
    raise ValueError("no LC_CODE_SIGNATURE load command: the binary is not signed")


def _code_directory(data: bytes, dataoff: int, datasize: int) -> int:
    """The file offset of the SHA-256 CodeDirectory inside the signature's SuperBlob: the
    primary one (Go's linker, codesign for macOS 11+), else an alternate one (codesign also
    writes a SHA-1 primary for older deployment targets)."""
    magic, length, count = struct.unpack_from(">III", data, dataoff)
    if magic != CSMAGIC_EMBEDDED_SIGNATURE or length > datasize:
        raise ValueError("the code signature is not an embedded-signature SuperBlob")
    found: list[int] = []
    for i in range(count):
        slot, off = struct.unpack_from(">II", data, dataoff + 12 + 8 * i)
        if slot == CSSLOT_CODEDIRECTORY or slot in CSSLOT_ALTERNATE_CODEDIRECTORIES:
            if off + 8 > length:
                raise ValueError("the CodeDirectory lies outside the signature")
            found.append(dataoff + int(off))
    if not found:
        raise ValueError("the code signature has no CodeDirectory")
    sha256 = [cd for cd in found if data[cd + 37] == CS_HASHTYPE_SHA256]
    return (sha256 or found)[0]


def read_code_signature(data: bytes) -> CodeSignature:
    """Parse and check the ad-hoc signature of a Mach-O image; ValueError says what is wrong."""
    dataoff, datasize = _signature_range(data)
    cd = _code_directory(data, dataoff, datasize)
    magic, _length, _version, flags, hash_offset, ident_offset = struct.unpack_from(">IIIIII", data, cd)
    if magic != CSMAGIC_CODEDIRECTORY:
        raise ValueError("the CodeDirectory's magic is wrong")
    _special, n_code, code_limit = struct.unpack_from(">III", data, cd + 24)
    hash_size, hash_type, _platform, page_log = struct.unpack_from(">BBBB", data, cd + 36)
    if hash_type != CS_HASHTYPE_SHA256 or hash_size != 32:
        raise ValueError(f"page hashes are of type {hash_type} (size {hash_size}), not SHA-256")
    if code_limit != dataoff:
        raise ValueError(f"the signature covers {code_limit} bytes, the code ends at {dataoff}")
    page = 1 << page_log
    if n_code != -(-code_limit // page):
        raise ValueError(f"{n_code} page hashes for {code_limit} bytes of {page}-byte pages")
    for i in range(n_code):
        want = data[cd + hash_offset + 32 * i : cd + hash_offset + 32 * (i + 1)]
        got = hashlib.sha256(data[i * page : min((i + 1) * page, code_limit)]).digest()
        if got != want:
            raise ValueError(f"page {i} (bytes {i * page}..) does not match its hash in the signature")
    ident = data[cd + ident_offset : data.index(b"\0", cd + ident_offset)].decode("utf-8", "replace")
    return CodeSignature(n_code, page, code_limit, bool(flags & CS_ADHOC), ident)


def check_code_signature(path: Path) -> CodeSignature:
    """Raise one line unless ``path`` carries a valid code signature with every page hash right."""
    try:
        return read_code_signature(path.read_bytes())
    except (ValueError, struct.error) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "the signature is truncated"
        raise KmError(f"{path.name}: invalid code signature: {reason}") from None
