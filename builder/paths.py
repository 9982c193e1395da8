"""Where relay keeps its caches: content-addressed, safe to share between checkouts."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$RELAY_CACHE_DIR`, else `$XDG_CACHE_HOME/relay`, else `~/.cache/relay`."""
    explicit = os.environ.get("RELAY_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "relay"
