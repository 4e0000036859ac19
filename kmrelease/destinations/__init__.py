"""Where a release is published: one small interface, one module per backend."""

from __future__ import annotations

from .base import Destination, ObjectInfo

__all__ = ["Destination", "ObjectInfo"]
