"""One exception type for expected failures: a one-line message, no traceback."""

from __future__ import annotations


class KmError(Exception):
    """An expected failure: bad input, a missing file, a refused operation.

    The task layer prints ``str(err)`` as one line on stderr and exits non-zero.
    Messages never contain secrets.
    """

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(" ".join(message.split("\n")))
        self.exit_code = exit_code
