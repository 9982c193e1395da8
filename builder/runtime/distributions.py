"""The distributions installed in a bundle and its layers, and what each of them requires on Lambda.

Read from their `.dist-info` (METADATA's `Requires-Dist`, RECORD's files)
without importing anything. A requirement counts when its marker holds on the
target (its Python version, `sys_platform == "linux"`, the architecture's
`platform_machine`) for the extras someone in the bundle asked for; every
other extra's requirements are skipped.
"""

from __future__ import annotations

import email.parser
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import attrs

from builder.frozen import to_tuple
from builder.runtime.extensions import split_extension


@attrs.frozen
class InstalledDistribution:
    name: str  # as its METADATA spells it
    version: str
    where: str  # "bundle" or "layers"
    requires: tuple[str, ...] = attrs.field(converter=to_tuple)  # Requires-Dist, as written
    top_level: tuple[str, ...] = attrs.field(converter=to_tuple)  # the importable names it installed
    folder: Path = Path()  # the site folder it is installed in

    @property
    def key(self) -> str:
        return canonical(self.name)


@attrs.frozen
class MissingRequirement:
    requirement: str  # "charset-normalizer<4,>=2"
    name: str  # "charset-normalizer"
    required_by: InstalledDistribution


def canonical(name: str) -> str:
    from packaging.utils import canonicalize_name  # only the static check needs it

    return str(canonicalize_name(name))


def installed_distributions(folders: Iterable[tuple[Path, str]]) -> tuple[InstalledDistribution, ...]:
    """Every `.dist-info` directly in each (folder, where); the first of a name wins, as on sys.path."""
    found: dict[str, InstalledDistribution] = {}
    for folder, where in folders:
        if not folder.is_dir():
            continue
        for info in sorted(folder.glob("*.dist-info")):
            dist = _read(info, folder, where)
            if dist is not None and dist.key not in found:
                found[dist.key] = dist
    return tuple(found.values())


def _read(info: Path, folder: Path, where: str) -> InstalledDistribution | None:
    try:
        text = (info / "METADATA").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    meta = email.parser.HeaderParser().parsestr(text)
    name = meta.get("Name")
    if not name:
        return None
    return InstalledDistribution(name=name, version=meta.get("Version", ""), where=where,
                                 requires=meta.get_all("Requires-Dist") or (), top_level=_top_level(info),
                                 folder=folder)


def _top_level(info: Path) -> tuple[str, ...]:
    """The importable names a distribution installed: the first part of each RECORD row."""
    try:
        rows = (info / "RECORD").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ()
    names = set()
    for row in rows:
        first = PurePosixPath(row.split(",", 1)[0]).parts[:1]
        if not first:
            continue
        part = first[0]
        if part in ("..", "__pycache__") or part.endswith((".dist-info", ".data", ".pth")):
            continue
        extension = split_extension(part)
        names.add(extension[0] if extension else part.removesuffix(".py"))
    return tuple(sorted(names))


def target_environment(python: str, machine: str) -> dict[str, str]:
    """The marker environment of Lambda's CPython `python` ("3.14") on `machine` ("aarch64")."""
    full = f"{python}.0"
    return {
        "python_version": python, "python_full_version": full, "implementation_version": full,
        "implementation_name": "cpython", "platform_python_implementation": "CPython",
        "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "platform_machine": machine,
        "platform_release": "", "platform_version": "",
    }


def missing_requirements(
    dists: tuple[InstalledDistribution, ...], provided: Iterable[str], *, python: str, machine: str,
) -> tuple[tuple[MissingRequirement, ...], int]:
    """(each requirement that holds on the target and no installed or provided distribution meets, how many held).

    Extras: a distribution's `extra == "x"` requirements count once another
    installed distribution requires it with `[x]`; the loop runs until no
    new extra turns up.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    present = {d.key for d in dists} | {canonical(name) for name in provided}
    env = target_environment(python, machine)
    parsed: dict[str, list[Requirement]] = {}
    for dist in dists:
        parsed[dist.key] = []
        for text in dist.requires:
            try:
                parsed[dist.key].append(Requirement(text))
            except InvalidRequirement:
                continue  # a malformed line in someone's METADATA is pip's business, not a missing module
    extras: dict[str, set[str]] = {d.key: {""} for d in dists}
    holding: dict[tuple[str, str], Requirement] = {}
    changed = True
    while changed:
        changed = False
        for dist in dists:
            for req in parsed[dist.key]:
                if (dist.key, str(req)) in holding or not _holds(req, env, extras[dist.key]):
                    continue
                holding[(dist.key, str(req))] = req
                target = canonical(req.name)
                if target in extras and not set(req.extras) <= extras[target]:
                    extras[target] |= set(req.extras)
                    changed = True
    by_key = {d.key: d for d in dists}
    missing = [
        MissingRequirement(str(req), req.name, by_key[key])
        for (key, _), req in holding.items() if canonical(req.name) not in present
    ]
    return tuple(missing), len(holding)


def _holds(req, env: dict[str, str], extras: set[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**env, "extra": extra}) for extra in sorted(extras))
