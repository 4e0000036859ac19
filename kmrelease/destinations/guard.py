"""One publisher at a time (issue 13 point 6): who holds a destination, said in one safe line.

A destination's :meth:`~kmrelease.destinations.Destination.publishing` lock is held for a whole
publish or promotion; its holder line (what, process, host, CI run, since when) is stored with
the lock so that a second publisher can name it. The commit point is written with
:meth:`~kmrelease.destinations.Destination.replace_if` as well, so even a lock lost halfway
(an expired lease) cannot move ``meta/version`` over another publisher's write.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime

from ..errors import KmError

MAX_HOLDER = 200


def holder_line(what: str) -> str:
    """``release v1.2.3 (pid 42 on build-7, GitHub run 99, since 2026-01-01T00:00:00Z)``."""
    parts = [f"pid {os.getpid()} on {socket.gethostname()}"]
    run = os.environ.get("GITHUB_RUN_ID", "").strip()
    if run:
        parts.append(f"GitHub run {run}")
    parts.append("since " + datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return safe_text(f"{what} ({', '.join(parts)})")


def safe_text(text: str | bytes, limit: int = MAX_HOLDER) -> str:
    """Printable ASCII only, at most ``limit`` characters: stored text can be anybody's."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    clean = "".join(c if " " <= c <= "~" else "?" for c in text.strip())
    return clean[:limit] + ("…" if len(clean) > limit else "")


def busy(label: str, holder: str | bytes) -> KmError:
    who = safe_text(holder) or "another publisher (no holder recorded)"
    return KmError(
        f"{label} is locked by another publisher: {who}; nothing was changed (run again once it has finished)"
    )


def moved(key: str, found: bytes | None) -> KmError:
    now = "absent" if found is None else repr(safe_text(found, 40))
    return KmError(
        f"{key} was changed by another publisher meanwhile (now {now}): the version pointer was not moved"
    )
