"""What `relay build` builds: the functions named (all when none), and the layers they use.

A layer used by functions of both architectures is one target per architecture.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from builder.config import Function, Layer, Project
from builder.errors import ConfigError
from builder.frozen import to_tuple
from builder.models import bundle_name


@attrs.frozen
class Target:
    """One bundle to build: a function, or a layer for one architecture."""

    kind: str
    name: str
    architecture: str
    requirements: Path | None
    sources: tuple[Path, ...] = attrs.field(converter=to_tuple)
    function: Function | None = None
    layer: Layer | None = None

    @property
    def bundle(self) -> str:
        return bundle_name(self.kind, self.name, self.architecture)

    @property
    def label(self) -> str:
        return f"layer {self.name} ({self.architecture})" if self.kind == "layer" else f"function {self.name}"


def select_targets(project: Project, names: tuple[str, ...]) -> tuple[list[Target], list[Target]]:
    """The functions named (all when none), the layers they use, and the layers named."""
    unknown = [n for n in names if n not in project.functions and n not in project.layers]
    if unknown:
        known = ", ".join(sorted({*project.functions, *project.layers}))
        raise ConfigError(f"nothing named {', '.join(unknown)} in {project.config_file.name}", hint=f"Known: {known}.")
    chosen_fns = [f for f in project.functions.values() if not names or f.name in names]
    wanted_layers: dict[tuple[str, str], None] = {}
    for fn in chosen_fns:
        for layer in fn.layers:
            wanted_layers[(layer, fn.architecture)] = None
    for name in names:
        if name in project.layers:
            users = {f.architecture for f in project.functions.values() if name in f.layers} or {project.architecture}
            for arch in sorted(users):
                wanted_layers[(name, arch)] = None
    if not names:
        for name in project.layers:
            if not any(key[0] == name for key in wanted_layers):
                wanted_layers[(name, project.architecture)] = None
    layer_targets = [_layer_target(project.layers[n], arch) for n, arch in sorted(wanted_layers)]
    return layer_targets, [_function_target(f) for f in chosen_fns]


def _function_target(fn: Function) -> Target:
    return Target("function", fn.name, fn.architecture, fn.requirements, (fn.source,), function=fn)


def _layer_target(layer: Layer, arch: str) -> Target:
    return Target("layer", layer.name, arch, layer.requirements, layer.packages, layer=layer)
