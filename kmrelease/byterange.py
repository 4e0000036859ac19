"""``Range: bytes=...`` requests (RFC 9110 §14) for the local edge: one range or none.

- one satisfiable range (``a-b``, ``a-``, ``-n``) → 206 with ``Content-Range: bytes a-b/size``;
- an unsatisfiable one (starts at or past the end, ``-0``, any range of an empty file) → 416
  with ``Content-Range: bytes */size``;
- several ranges, another unit, a malformed header, or an ``If-Range`` → the whole file (200):
  allowed by the RFC (a server may ignore Range) and simpler than multipart/byteranges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ONE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})", re.ASCII)


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


UNSATISFIABLE = ByteRange(-1, -2)


def parse_range(header: str | None, size: int, *, if_range: str | None = None) -> ByteRange | None:
    """The range to send, :data:`UNSATISFIABLE`, or None for the whole file."""
    if not header or if_range is not None:
        return None
    m = _ONE.fullmatch(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None  # several ranges, other units, malformed: ignored
    first, last = m.group(1), m.group(2)
    if not first:  # a suffix: the last n bytes
        n = int(last)
        return UNSATISFIABLE if n == 0 or size == 0 else ByteRange(max(0, size - n), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid: ignored (RFC 9110 §14.1.1)
    if start >= size:
        return UNSATISFIABLE
    return ByteRange(start, min(end, size - 1))
