"""Where relay finds a project's config and keeps its caches (content-addressed, safe to share between checkouts).

Standard library only: `relay build` finds its no-op stamp with it before loading anything else.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from builder.errors import ConfigError

CONFIG_FILE = "relay.toml"
PYPROJECT = "pyproject.toml"


def find_config(start: Path) -> Path:
    """The nearest relay.toml, or pyproject.toml with [tool.relay], at or above `start`."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
        pyproject = folder / PYPROJECT
        if pyproject.is_file() and "relay" in read_toml(pyproject).get("tool", {}):
            return pyproject
    raise ConfigError(
        f"no {CONFIG_FILE} (or [tool.relay] in {PYPROJECT}) in {start} or above",
        hint="Run relay inside a project, pass --config PATH, or create one with `relay init`.",
    )


def read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid TOML: {exc}") from None


def cache_dir() -> Path:
    """`$RELAY_CACHE_DIR`, else `$XDG_CACHE_HOME/relay`, else `~/.cache/relay`."""
    explicit = os.environ.get("RELAY_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "relay"
