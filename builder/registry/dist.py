"""What `relay build` left in dist/: the bundles to publish, checked before anything is sent.

`dist/index.json` lists the bundles (layers first); each has a zip and a
manifest. Publishing refuses a dist/ that is incomplete (a configured function
missing, a layer a function needs missing) or stale (a zip whose bytes are not
the ones its manifest names), so what goes up is exactly what was built.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs

from builder import schemas
from builder.bundle.digest import sha256_file
from builder.config import Project
from builder.errors import UsageError
from builder.frozen import to_tuple
from builder.models import Manifest

INDEX_FILE = "index.json"
INDEX_SCHEMA = "relay.build/v1"
_REBUILD = "Run `relay build` first."


@attrs.frozen
class DistBundle:
    manifest: Manifest
    zip_path: Path

    @property
    def zip_name(self) -> str:
        return f"{self.manifest.bundle_name}.zip"


@attrs.frozen
class Dist:
    app: str
    runtime: str
    folder: Path
    bundles: tuple[DistBundle, ...] = attrs.field(converter=to_tuple)

    @property
    def functions(self) -> tuple[DistBundle, ...]:
        return tuple(b for b in self.bundles if b.manifest.kind == "function")

    @property
    def layers(self) -> tuple[DistBundle, ...]:
        return tuple(b for b in self.bundles if b.manifest.kind == "layer")


def load_dist(project: Project, folder: Path | None = None) -> Dist:
    """The project's built bundles, complete and matching their manifests."""
    folder = folder or project.dist_dir
    index = _read_index(folder)
    if index.get("app") != project.name:
        raise UsageError(f"{folder / INDEX_FILE} is a build of {index.get('app')!r}, not {project.name!r}", hint=_REBUILD)
    bundles = tuple(_bundle(folder, entry) for entry in index.get("bundles", ()))
    dist = Dist(app=project.name, runtime=index.get("runtime", project.runtime), folder=folder, bundles=bundles)
    _check_complete(project, dist)
    return dist


def _read_index(folder: Path) -> dict:
    path = folder / INDEX_FILE
    if not path.is_file():
        raise UsageError(f"no build in {folder}: {INDEX_FILE} not found", hint=_REBUILD)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UsageError(f"{path}: not JSON ({exc})", hint=_REBUILD) from None
    if doc.get("schema") != INDEX_SCHEMA:
        raise UsageError(f"{path}: unknown schema {doc.get('schema')!r}", hint=_REBUILD)
    return doc


def _bundle(folder: Path, entry: dict) -> DistBundle:
    manifest_path = folder / entry["manifest"]
    zip_path = folder / entry["zip"]
    if not manifest_path.is_file() or not zip_path.is_file():
        raise UsageError(f"{folder}: {entry['zip']} or {entry['manifest']} is missing", hint=_REBUILD)
    doc = json.loads(manifest_path.read_text(encoding="utf-8"))
    problems = schemas.errors("manifest", doc)
    if problems:
        raise UsageError(f"{manifest_path.name}: {schemas.key_path(problems[0])}: {problems[0].message}", hint=_REBUILD)
    manifest = Manifest.from_json(doc)
    actual = sha256_file(zip_path)
    if actual != manifest.sha256 or zip_path.stat().st_size != manifest.zipped_size:
        raise UsageError(f"{zip_path.name} does not match its manifest (sha256 {actual[:12]}, manifest says "
                         f"{manifest.sha256[:12]})", hint="dist/ changed after the build; " + _REBUILD)
    return DistBundle(manifest=manifest, zip_path=zip_path)


def _check_complete(project: Project, dist: Dist) -> None:
    functions = {b.manifest.name for b in dist.functions}
    missing = sorted(set(project.functions) - functions)
    if missing:
        raise UsageError(f"dist/ has no build of function(s) {', '.join(missing)}: a release holds every function",
                         hint="Run `relay build` (without names) first.")
    layers = {(b.manifest.name, b.manifest.sha256) for b in dist.layers}
    for bundle in dist.functions:
        for ref in bundle.manifest.layers:
            if (ref.name, ref.sha256) not in layers:
                raise UsageError(f"function {bundle.manifest.name} needs layer {ref.name} ({ref.sha256[:12]}), "
                                 "which is not in dist/", hint=_REBUILD)
