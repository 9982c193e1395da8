"""What Lambda's Python runtime ships besides the standard library: the AWS SDK and what it needs.

On Lambda these distributions sit in a folder on sys.path after the task root
and the layers (`/var/runtime`), so a bundle or a layer that brings its own
copy wins, and a handler that brings none still imports them. relay stands
that folder in by linking the same distributions installed in its own
environment (their modules and their `.dist-info`, so `importlib.metadata`
answers too). Nothing is allowed by module name: a module is importable
because it is there.
"""

from __future__ import annotations

import functools
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.metadata import Distribution

# Distribution names, as pip knows them (`python-dateutil` provides `dateutil`).
PROVIDED_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
# The modules among them that call AWS: their errors while a handler is imported mean init called AWS.
AWS_SDK_MODULES = ("boto3", "botocore", "s3transfer")


def link_provided(into: Path) -> tuple[str, ...]:
    """Link the provided distributions from relay's environment into `into`; the top-level modules linked.

    A distribution that is not installed here is left out (relay itself
    depends on boto3, so the SDK is always there).
    """
    import importlib.metadata  # here: only invoke and the import check need it

    into.mkdir(parents=True, exist_ok=True)
    modules: list[str] = []
    for name in PROVIDED_DISTRIBUTIONS:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for entry in _top_level_entries(dist):
            source = Path(str(dist.locate_file(entry)))
            target = into / entry
            if not source.exists() or target.exists():
                continue
            target.symlink_to(source, target_is_directory=source.is_dir())
            if not entry.endswith(".dist-info"):
                modules.append(entry.removesuffix(".py"))
    return tuple(sorted(modules))


@functools.cache
def provided_modules() -> tuple[str, ...]:
    """The top-level modules of the provided distributions installed here (what the static check may find)."""
    import importlib.metadata

    modules: set[str] = set()
    for name in PROVIDED_DISTRIBUTIONS:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        modules.update(e.removesuffix(".py") for e in _top_level_entries(dist) if not e.endswith(".dist-info"))
    return tuple(sorted(modules))


def provided_versions() -> dict[str, str]:
    """The version of each provided distribution installed here (what a check's outcome depends on)."""
    return dict(_versions())


@functools.cache
def _versions() -> tuple[tuple[str, str], ...]:
    # Once per process (every check's mount asks): reading seven distributions' metadata took ~7 ms.
    import importlib.metadata

    versions = []
    for name in PROVIDED_DISTRIBUTIONS:
        try:
            versions.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            continue
    return tuple(versions)


def _top_level_entries(dist: Distribution) -> list[str]:
    """The files and folders a distribution installed directly in site-packages (its RECORD's first parts)."""
    entries = set()
    for file in _recorded(dist):
        first = PurePosixPath(file).parts[0]
        # "..": scripts installed to bin/; __pycache__: the bytecode of a top-level module (six.py).
        if first in ("..", "__pycache__") or first.endswith(".data") or first.endswith(".pth"):
            continue
        entries.add(first)
    return sorted(entries)


def _recorded(dist: Distribution) -> list[str]:
    """The paths `dist` installed: its RECORD's first column, read as CSV (botocore's 2,000 rows: ~1 ms, where
    `Distribution.files` makes a path object of each, ~20 ms); what `files` says when it has no RECORD."""
    import csv
    import io

    text = dist.read_text("RECORD")
    if text is None:
        return [str(file) for file in dist.files or ()]
    return [row[0] for row in csv.reader(io.StringIO(text)) if row]
