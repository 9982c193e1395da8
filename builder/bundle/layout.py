"""What goes into a bundle: the files of a function or a layer, laid out as Lambda mounts them.

A function zip holds its installed requirements and its source folder at the
root (`/var/task`). A layer zip holds everything under `python/` (`/opt/python`):
its installed requirements and the importable packages of its local package
folders (e.g. `libs/shared/shared/` -> `python/shared/`).
"""

from __future__ import annotations

from pathlib import Path

from builder.bundle.zipwriter import ZipEntry, collect_tree
from builder.errors import BuildFailed

LAYER_ROOT = "python"
# Files of a local package folder that are project plumbing, not importable code.
_NOT_CODE = {"setup.py", "conftest.py", "noxfile.py", "tasks.py"}


def function_entries(source: Path, installed: Path, exclude: tuple[str, ...]) -> list[ZipEntry]:
    deps = collect_tree(installed) if installed.is_dir() else []
    code = collect_tree(source, exclude=exclude)
    return _merge(deps, code, what=f"function source {source.name}")


def layer_entries(packages: tuple[Path, ...], installed: Path, exclude: tuple[str, ...]) -> list[ZipEntry]:
    entries = collect_tree(installed, prefix=f"{LAYER_ROOT}/") if installed.is_dir() else []
    for folder in packages:
        entries = _merge(entries, local_package_entries(folder, exclude), what=f"local package {folder.name}")
    return entries


def local_package_entries(folder: Path, exclude: tuple[str, ...]) -> list[ZipEntry]:
    """The importable code in a local package folder, under `python/`."""
    if (folder / "__init__.py").is_file():
        return collect_tree(folder, prefix=f"{LAYER_ROOT}/{folder.name}/", exclude=exclude)
    base = folder / "src" if (folder / "src").is_dir() else folder
    entries: list[ZipEntry] = []
    for child in sorted(base.iterdir()):
        if child.is_dir() and (child / "__init__.py").is_file() and not _excluded(child.name, exclude):
            entries += collect_tree(child, prefix=f"{LAYER_ROOT}/{child.name}/", exclude=exclude)
        elif child.is_file() and child.suffix == ".py" and child.name not in _NOT_CODE:
            entries.append(ZipEntry(path=f"{LAYER_ROOT}/{child.name}", source=child, executable=False))
    if not entries:
        raise BuildFailed(
            "layout",
            f"local package folder {folder} holds no importable package",
            hint="Point `packages` at a folder with __init__.py, or at a project holding one (optionally under src/).",
        )
    return entries


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


def _excluded(name: str, exclude: tuple[str, ...]) -> bool:
    from fnmatch import fnmatch

    return any(fnmatch(name, pattern) for pattern in exclude)
