"""Optional parts of the engine (``pyproject.toml`` extras) and the one line that names them.

``pip install 'kmrelease[azure]'`` brings the Azure SDK (Blob Storage, identity, Front
Door); a ``./dev`` checkout has it already (``./dev bootstrap`` installs ``.[test,lint]``,
which includes it). Code that needs an extra imports it inside :func:`needs_extra`: a
missing package becomes a :class:`~kmrelease.errors.KmError` naming the extra instead of
a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .errors import KmError

# extra → (what it is, the top-level packages it provides)
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "azure": ("the Azure SDK", ("azure",)),
}


def missing_extra_message(extra: str, purpose: str) -> str:
    what = EXTRAS[extra][0]
    return (
        f"{purpose} needs {what}: pip install 'kmrelease[{extra}]' "
        f"(in a ./dev checkout: ./dev bootstrap, or .venv/bin/pip install -e '.[{extra}]')"
    )


@contextmanager
def needs_extra(extra: str, purpose: str) -> Iterator[None]:
    """Turn a missing package of ``extra`` imported inside the block into one clear error."""
    packages = EXTRAS[extra][1]
    try:
        yield
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".", 1)[0]
        if top not in packages:
            raise
        raise KmError(missing_extra_message(extra, purpose)) from None
