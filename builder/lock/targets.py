"""What `relay lock` locks: each function and layer with a requirements `.in`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs

from builder.config import Project
from builder.errors import ConfigError
from builder.lock.lockfile import lock_path_for


@attrs.frozen
class LockTarget:
    kind: str  # "function" | "layer"
    name: str
    source: Path  # the .in file
    architecture: str  # what uv resolves for; layers resolve for x86_64

    @property
    def lock(self) -> Path:
        return lock_path_for(self.source)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"


def lock_targets(project: Project, names: Sequence[str] = ()) -> list[LockTarget]:
    """Every function and layer with requirements, or those named (a name may be both)."""
    targets = [
        *(LockTarget("layer", lay.name, lay.requirements, "x86_64")
          for lay in project.layers.values() if lay.requirements),
        *(LockTarget("function", fn.name, fn.requirements, fn.architecture)
          for fn in project.functions.values() if fn.requirements),
    ]
    if not names:
        return targets
    known = set(project.functions) | set(project.layers)
    unknown = sorted(set(names) - known)
    if unknown:
        raise ConfigError(
            f"{project.config_file.name}: no function or layer named {', '.join(map(repr, unknown))}",
            hint=f"Known functions and layers: {', '.join(sorted(known))}.",
        )
    return [t for t in targets if t.name in names]


def refuse_shared_inputs(targets: list[LockTarget]) -> None:
    """Refuse one `.in` shared by two architectures.

    Two targets writing one lock at once would race, and uv could resolve
    them differently (arm64 vs x86_64); say so rather than pick one.
    """
    seen: dict[Path, LockTarget] = {}
    for target in targets:
        other = seen.setdefault(target.source.resolve(), target)
        if other is not target and other.architecture != target.architecture:
            raise ConfigError(
                f"{other.label} ({other.architecture}) and {target.label} ({target.architecture}) "
                f"share {target.source.name}; one lock cannot serve both architectures",
                hint="Give each architecture its own requirements .in file.",
            )
