"""What `relay lock` locks: each function and layer with requirements, and what decides its lock.

A target's requirements are a `.in` file or a pyproject.toml (optionally one
group of it), optionally constrained by the app's own `uv.lock`/`poetry.lock`
(`pins`). Its lock's input hash covers exactly what decides the resolution:

- a `.in`: the file's bytes and every file it includes with -r/-c (as before);
- a pyproject: the extracted requirements, normalised (so reformatting the file
  or bumping `[project].version` does not stale the lock), and the group's name;
- pins: the pinned `name==version` set, not the file's bytes, for the same
  reason: uv.lock records the project's own version, and both tools rewrite
  their lock for changes that move no pin (a dev tool, the content-hash).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from builder.config import PYPROJECT, Project
from builder.errors import ConfigError, UnknownName
from builder.lock.lockfile import includes, input_sha256, lock_path_for

if TYPE_CHECKING:
    from builder.lock.pins import Pins


@attrs.frozen
class LockTarget:
    kind: str  # "function" | "layer"
    name: str
    source: Path  # the .in file, or the pyproject.toml
    architecture: str  # what uv resolves for (and pins' markers are read for); layers resolve for x86_64
    runtime: str = ""  # the app's runtime: pins' markers are read for its Python
    group: str | None = None  # "pyproject.toml#group"
    pins: Path | None = None  # the app's uv.lock or poetry.lock
    lock_file: Path | None = None  # from the config; default: the .txt next to a .in

    @property
    def lock(self) -> Path:
        return self.lock_file or lock_path_for(self.source)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def key(self) -> str:
        """The config key that names the requirements, for messages."""
        return f"{self.kind}s.{self.name}.requirements"

    @property
    def is_pyproject(self) -> bool:
        return self.source.name == PYPROJECT

    @property
    def inputs(self) -> tuple[Path, ...]:
        """Every file that decides the resolution (what a no-op build's fingerprint must cover)."""
        files = [self.source]
        if not self.is_pyproject:
            files += [path for _reference, path in includes(self.source)]
        if self.pins:
            files.append(self.pins)
        return tuple(files)

    def reference(self, root: Path) -> str:
        """`services/pyproject.toml#layer`: the requirements as the config names them."""
        relative = Path(os.path.relpath(self.source, root)).as_posix()
        return f"{relative}#{self.group}" if self.group else relative

    def declared(self) -> tuple[str, ...]:
        """A pyproject's requirements (normalised PEP 508 lines); only for a pyproject target."""
        from builder.lock.pyproject import declared_requirements

        return declared_requirements(self.source, self.group, self.key)

    def read_pins(self) -> Pins | None:
        from builder.lock.pins import read_pins

        return read_pins(self.pins, self.runtime, self.architecture) if self.pins else None

    def input_sha256(self) -> str:
        """What the lock's header records: it changes exactly when the resolution's inputs do."""
        pins = self.read_pins()
        if not self.is_pyproject and pins is None:
            return input_sha256(self.source)  # a plain .in: the same value relay always wrote
        document = {
            "requirements": list(self.declared()) if self.is_pyproject else input_sha256(self.source),
            "group": _canonical_group(self.group),
            "pins": list(pins.lines) if pins else None,
        }
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()

    def what_changed(self, root: Path) -> str:
        """How a stale lock's inputs changed, said for this kind of target."""
        what = (f"the requirements in {self.reference(root)}" if self.is_pyproject
                else "the .in file (or a file it includes)")
        if self.pins:
            what += f" or the pins in {Path(os.path.relpath(self.pins, root)).as_posix()}"
        return f"{what} changed"


def _canonical_group(group: str | None) -> str | None:
    if group is None:
        return None
    from packaging.utils import canonicalize_name

    return canonicalize_name(group)


def lock_targets(project: Project, names: Sequence[str] = ()) -> list[LockTarget]:
    """Every function and layer with requirements, or those named (a name may be both)."""
    targets = [
        *(LockTarget("layer", lay.name, lay.requirements, "x86_64", project.runtime, lay.requirements_group,
                     lay.pins, lay.lock)
          for lay in project.layers.values() if lay.requirements),
        *(LockTarget("function", fn.name, fn.requirements, fn.architecture, project.runtime, fn.requirements_group,
                     fn.pins, fn.lock)
          for fn in project.functions.values() if fn.requirements),
    ]
    if not names:
        return targets
    known = set(project.functions) | set(project.layers)
    unknown = sorted(set(names) - known)
    if unknown:
        raise UnknownName("function or layer", unknown, known, config=project.config_file.name)
    return [t for t in targets if t.name in names]


def lock_target_of(project: Project, kind: str, name: str) -> LockTarget | None:
    """The lock target of one function or layer, None when it has no requirements."""
    return next((t for t in lock_targets(project) if t.kind == kind and t.name == name), None)


def refuse_shared_inputs(targets: list[LockTarget]) -> None:
    """Refuse one lock shared by two architectures.

    Two targets writing one lock at once would race, and uv could resolve
    them differently (arm64 vs x86_64); say so rather than pick one. (The
    config already refuses one lock for two different requirements.)
    """
    seen: dict[Path, LockTarget] = {}
    for target in targets:
        other = seen.setdefault(target.lock.resolve(), target)
        if other is not target and other.architecture != target.architecture:
            raise ConfigError(
                f"{other.label} ({other.architecture}) and {target.label} ({target.architecture}) "
                f"share {target.lock.name}; one lock cannot serve both architectures",
                hint="Give each architecture its own lock (the `lock` key, or its own requirements .in file).",
            )
