"""What goes into a bundle: the files of a function or a layer, laid out as Lambda mounts them.

A function zip holds its installed requirements and its selected code at the
root (`/var/task`). A layer zip holds everything under `python/` (`/opt/python`):
its installed requirements and the importable packages of its local package
folders (e.g. `libs/shared/shared/` -> `python/shared/`). Which files of the
project tree go in is decided once, by `builder.bundle.selection`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from builder.bundle.selection import LAYER_ROOT, Selection
from builder.bundle.zipwriter import ZipEntry, entries_of
from builder.errors import BuildFailed


def bundle_entries(selection: Selection, installed: Path, files: Mapping[str, bool]) -> list[ZipEntry]:
    """The installed requirements, then the selected code (which may not overwrite them).

    `files`: what the installer wrote under `installed` and kept (path -> executable); nothing is walked.
    """
    prefix = f"{LAYER_ROOT}/" if selection.kind == "layer" else ""
    deps = entries_of(installed, files, prefix=prefix)
    what = f"local packages of layer {selection.name}" if selection.kind == "layer" else f"code of function {selection.name}"
    return _merge(deps, selection.entries(), what=what)


def _merge(first: list[ZipEntry], second: list[ZipEntry], *, what: str) -> list[ZipEntry]:
    taken = {entry.path for entry in first}
    clashes = sorted(entry.path for entry in second if entry.path in taken)
    if clashes:
        raise BuildFailed(
            "layout",
            f"{what} would overwrite files installed from requirements: {', '.join(clashes[:5])}",
            hint="Rename the module or drop the requirement that provides it.",
        )
    return [*first, *second]
