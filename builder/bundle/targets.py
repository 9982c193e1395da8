"""What `relay build` builds: the functions named (all when none), and the layers they use.

A layer used by functions of both architectures is one target per architecture.
What each target ships from the project tree is its selection (`builder.bundle.selection`).
"""

from __future__ import annotations

from pathlib import Path

import attrs

from builder.bundle.gitinfo import GitView
from builder.bundle.selection import Selection, select_function, select_layer
from builder.config import Function, Layer, Project
from builder.errors import UnknownName
from builder.models import bundle_name


@attrs.frozen
class Target:
    """One bundle to build: a function, or a layer for one architecture."""

    kind: str
    name: str
    architecture: str
    requirements: Path | None
    function: Function | None = None
    layer: Layer | None = None

    @property
    def bundle(self) -> str:
        return bundle_name(self.kind, self.name, self.architecture)

    @property
    def label(self) -> str:
        return f"layer {self.name} ({self.architecture})" if self.kind == "layer" else f"function {self.name}"

    def selection(self, project: Project, git: GitView, *, scan: bool = True) -> Selection:
        """The files this bundle ships from the project tree (`scan=False`: no reading files for secrets)."""
        if self.function is not None:
            return select_function(project, self.function, git, scan=scan)
        assert self.layer is not None
        return select_layer(project, self.layer, git, scan=scan)


def select_targets(project: Project, names: tuple[str, ...]) -> tuple[list[Target], list[Target]]:
    """The functions named (all when none), the layers they use, and the layers named."""
    unknown = [n for n in names if n not in project.functions and n not in project.layers]
    if unknown:
        raise UnknownName("function or layer", unknown, {*project.functions, *project.layers}, config=project.config_file.name)
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
    return Target("function", fn.name, fn.architecture, fn.requirements, function=fn)


def _layer_target(layer: Layer, arch: str) -> Target:
    return Target("layer", layer.name, arch, layer.requirements, layer=layer)
