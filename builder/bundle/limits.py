"""Lambda's size and layer-count limits, checked before anything leaves the machine.

Each refusal gives the figures and the biggest contributors, so the user sees
what to move or drop without unzipping anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from builder.errors import LimitExceeded

if TYPE_CHECKING:  # the config reads the layer limit on every command: the zip writer is not loaded for it
    from builder.bundle.zipwriter import BundleStats

ZIPPED_MAX = 52_428_800  # 50 MB: direct upload limit for a function or layer zip
UNZIPPED_MAX = 262_144_000  # function + all its layers, unzipped
LAYERS_MAX = 5
SHOWN = 5  # contributors named in a refusal
_MIB = 1024 * 1024


def check_layer_count(function: str, layers: Sequence[str]) -> None:
    if len(layers) > LAYERS_MAX:
        raise LimitExceeded(
            f"{function}: uses {len(layers)} layers > {LAYERS_MAX} limit ({', '.join(layers)})",
            hint=f"Merge layers: Lambda allows at most {LAYERS_MAX} per function.",
        )


def check_bundle(name: str, stats: BundleStats) -> None:
    """The zipped limit of one function or layer zip."""
    if stats.zipped_size > ZIPPED_MAX:
        biggest = ", ".join(f"{group} {human_size(size)}" for group, size in stats.contributors[:SHOWN])
        raise LimitExceeded(
            f"{name}: {figure(stats.zipped_size)} zipped > {figure(ZIPPED_MAX)} limit; "
            f"biggest (unzipped): {biggest or 'nothing'}"
        )


def check_function(name: str, stats: BundleStats, layers: Mapping[str, BundleStats]) -> None:
    """Layer count, the function's zipped size, and unzipped size with all its layers.

    Each layer's own zipped size is checked with `check_bundle` when it is built.
    """
    check_layer_count(name, list(layers))
    check_bundle(name, stats)
    total = stats.unzipped_size + sum(layer.unzipped_size for layer in layers.values())
    if total > UNZIPPED_MAX:
        raise LimitExceeded(
            f"{name}: {figure(total)} unzipped with its layers > {figure(UNZIPPED_MAX)} limit; "
            f"biggest: {_biggest(name, stats, layers)}"
        )


def figure(size: int) -> str:
    """Exact bytes and MiB, e.g. `270,011,904 bytes (257.5 MiB)`."""
    return f"{size:,} bytes ({size / _MIB:.1f} MiB)"


def human_size(size: int) -> str:
    if size >= _MIB:
        return f"{size / _MIB:.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} bytes"


def _biggest(name: str, stats: BundleStats, layers: Mapping[str, BundleStats]) -> str:
    owned = [(size, group, name) for group, size in stats.contributors]
    for layer_name, layer in layers.items():
        owned += [(size, group, f"layer {layer_name}") for group, size in layer.contributors]
    owned.sort(key=lambda item: (-item[0], item[2], item[1]))
    return ", ".join(f"{group} {human_size(size)} ({owner})" for size, group, owner in owned[:SHOWN]) or "nothing"
