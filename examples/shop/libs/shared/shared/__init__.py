"""Code shared by the shop's functions, shipped in the `common` layer."""

from __future__ import annotations

__version__ = "1.0.0"
