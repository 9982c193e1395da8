"""How many cores a build may use."""

from __future__ import annotations

import os


def available_cores() -> int:
    """The cores this process may run on (its affinity, e.g. a CI container's share), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return os.cpu_count() or 1
