"""The build output contract: what `relay build` leaves in dist/, written and read only here.

dist/ holds, for each bundle, its zip and its manifest, named by the bundle's
stem (`orders.zip` + `orders.manifest.json` for a function,
`layer-common-x86_64.zip` + `layer-common-x86_64.manifest.json` for a layer,
built once per architecture), and `index.json` (schema `relay.build/v1`)
listing the project's bundles present there, layers first.

Writers: the build pipeline (`write_bundle`, `write_index`). Readers:
publishing (`load_dist`: complete and matching its manifests, or refused),
`relay invoke` (`function_bundle`: one function and its layers), and the
no-op fast path (`output_files`: what to fingerprint). This module loads
nothing of the build pipeline, so the fast path stays fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import attrs

from builder import names, schemas
from builder.bundle.digest import sha256_file
from builder.config import Function, Project
from builder.errors import BuildFailed, NotFound, UsageError, VerificationFailed
from builder.frozen import to_tuple
from builder.models import Manifest, bundle_name

INDEX_FILE = "index.json"
SAFE_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")  # a file directly in dist/: no separators
INDEX_SCHEMA = "relay.build/v1"
_REBUILD = "Run `relay build` first."


# -- names -------------------------------------------------------------------------------------


def zip_name(stem: str) -> str:
    """`orders.zip` for the stem `orders` (see `models.bundle_name`)."""
    return f"{stem}.zip"


def manifest_name(stem: str) -> str:
    return f"{stem}.manifest.json"


def layer_stem(name: str, architecture: str) -> str:
    return bundle_name("layer", name, architecture)


# -- writing -----------------------------------------------------------------------------------


@attrs.frozen
class WrittenBundle:
    zip_path: Path
    manifest_path: Path
    changed: bool  # the zip's bytes were not in dist/ before


def write_bundle(folder: Path, built_zip: Path, manifest: Manifest) -> WrittenBundle:
    """Put one bundle's zip and manifest in `folder`, rewriting neither when it already holds them."""
    from builder.fsutil import atomic_copy, atomic_write_text  # loads zipfile: not on the no-op path

    zip_path = folder / zip_name(manifest.bundle_name)
    manifest_path = folder / manifest_name(manifest.bundle_name)
    changed = not (zip_path.is_file() and zip_path.stat().st_size == manifest.zipped_size
                   and sha256_file(zip_path) == manifest.sha256)
    if changed:
        with _writing(zip_path):
            atomic_copy(built_zip, zip_path)
    text = json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n"
    if not manifest_path.is_file() or manifest_path.read_text(encoding="utf-8") != text:
        with _writing(manifest_path):
            atomic_write_text(manifest_path, text)
    return WrittenBundle(zip_path, manifest_path, changed)


def write_index(project: Project) -> Path:
    """dist/index.json: every bundle of the project present in dist/, layers first."""
    from builder.fsutil import atomic_write_text  # loads zipfile: not on the no-op path

    folder = project.dist_dir
    entries = {}
    for layer_name in project.layers:
        for path in sorted(folder.glob(manifest_name(layer_stem(layer_name, "*")))):
            entries[path.name] = _index_entry(path)
    for fn_name in project.functions:
        path = folder / manifest_name(bundle_name("function", fn_name, ""))
        if path.is_file():
            entries[path.name] = _index_entry(path)
    doc = {"schema": INDEX_SCHEMA, "app": project.name, "runtime": project.runtime, "bundles": list(entries.values())}
    path = folder / INDEX_FILE
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        with _writing(path):
            atomic_write_text(path, text)
    return path


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """An OS error writing into dist/ (a full disk, a read-only folder) is BuildFailed naming the file.

    The writes are atomic (builder.fsutil): the file keeps its previous bytes and no temp file stays.
    """
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise BuildFailed("write dist/", f"cannot write {path}: {reason}",
                          hint="Free some space or fix the folder's permissions, then run `relay build` again.") from None


def _index_entry(manifest_path: Path) -> dict:
    manifest = Manifest.from_json(_read_json(manifest_path), what=manifest_path.name)
    return {
        "kind": manifest.kind,
        "name": manifest.name,
        "architecture": manifest.architecture,
        "zip": zip_name(manifest.bundle_name),
        "manifest": manifest_path.name,
        "lock": manifest.lock.path if manifest.lock else None,
    }


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UsageError(f"{path.name}: not JSON ({exc})", hint=_REBUILD) from None


# -- which build wrote dist/ -------------------------------------------------------------------
#
# A build stamps index.json with its id (the digest of the build keys of the bundles it built: the
# same inputs give the same id, so a no-op build rewrites nothing) and each entry with the id of the
# build that wrote it and its manifest's digest. A failed build marks the index failed, naming what it
# did not finish. Publishing takes only a dist/ that one successful build wrote whole.


def build_id(built: dict[str, str]) -> str:
    """The id of a build that built `built` ({bundle stem: build key})."""
    return hashlib.sha256(json.dumps(sorted(built.items())).encode()).hexdigest()


def build_stamps(project: Project) -> dict[str, str]:
    """{manifest file name: id of the build that wrote it} from the current index (empty when there is none)."""
    try:
        doc = json.loads((project.dist_dir / INDEX_FILE).read_text(encoding="utf-8"))
        return {e["manifest"]: e["build"] for e in doc["bundles"] if isinstance(e.get("build"), str)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def stamp_build(project: Project, built: dict[str, str], previous: dict[str, str]) -> None:
    """After a successful build: the index says which build wrote each bundle (`previous` for the others)."""
    folder = project.dist_dir
    doc = _read_index(folder)
    run = build_id(built)
    for entry in doc["bundles"]:
        stem = entry["manifest"].removesuffix(".manifest.json")
        entry["build"] = run if stem in built else previous.get(entry["manifest"])
        entry["manifest_sha256"] = sha256_file(folder / entry["manifest"])
    doc["build"] = {"id": run, "state": "complete"}
    _write_index_doc(folder / INDEX_FILE, doc)


def mark_failed(project: Project, unfinished: list[str]) -> None:
    """After a failed build: the index says so (and what was not finished), so publish refuses this dist/."""
    path = project.dist_dir / INDEX_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        doc = None
    if not isinstance(doc, dict):
        doc = {"schema": INDEX_SCHEMA, "app": project.name, "runtime": project.runtime, "bundles": []}
    doc["build"] = {"id": None, "state": "failed", "unfinished": unfinished}
    with contextlib.suppress(OSError):  # the build's own error is the one to report; publish still checks digests
        _write_index_doc(path, doc)


def _write_index_doc(path: Path, doc: dict) -> None:
    from builder.fsutil import atomic_write_text  # loads zipfile: not on the no-op path

    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        try:
            atomic_write_text(path, text)
        except OSError as exc:
            raise BuildFailed("write dist/", f"cannot write {path}: {exc.strerror or type(exc).__name__}",
                              hint="Free some space or fix the folder's permissions, then run `relay build` again.") from None


def _check_one_build(folder: Path, index: dict, bundles: tuple[DistBundle, ...]) -> None:
    """BuildFailed (exit 4) unless one successful build wrote every bundle listed (see `stamp_build`).

    An index without a build stamp was written by a relay from before stamps: its bundles are still
    checked against their manifests (`_listed_bundle`), nothing more can be said.
    """
    build = index.get("build")
    if build is None:
        return
    hint = "Fix what failed and run `relay build` (every function): publish takes what one successful build wrote."
    if not isinstance(build, dict) or build.get("state") != "complete" or not isinstance(build.get("id"), str):
        unfinished = build.get("unfinished") if isinstance(build, dict) else None
        named = ", ".join(str(u) for u in unfinished) if isinstance(unfinished, list) and unfinished else "unknown"
        raise BuildFailed("publish", f"the last relay build failed; dist/ is incomplete (not built: {named})", hint=hint)
    stale = []
    for entry, bundle in zip(index.get("bundles", ()), bundles, strict=True):
        label = _label(bundle.manifest)
        if entry.get("build") != build["id"]:
            stale.append(f"{label} (built by an earlier relay build)")
        elif entry.get("manifest_sha256") != sha256_file(folder / entry["manifest"]):
            stale.append(f"{label} (its manifest changed after the build)")
    if stale:
        raise BuildFailed("publish", f"dist/ mixes builds: {', '.join(stale)} did not come from the last build", hint=hint)


def _label(manifest: Manifest) -> str:
    return f"function {manifest.name}" if manifest.kind == "function" else f"layer {manifest.name} ({manifest.architecture})"


# -- what the no-op fast path fingerprints -----------------------------------------------------


def output_files(folder: Path) -> list[Path]:
    """The index and every zip and manifest it lists: the files a build's outcome lives in.

    When the index is missing or unreadable, just its path: a fingerprint of
    a missing file differs from that of the one a build wrote.
    """
    index = folder / INDEX_FILE
    try:
        doc = json.loads(index.read_text(encoding="utf-8"))
        listed = [name for entry in doc["bundles"] for name in (entry["zip"], entry["manifest"])]
    except (OSError, ValueError, KeyError, TypeError):
        return [index]
    return [index, *(folder / name for name in listed)]


# -- reading for publishing --------------------------------------------------------------------


@attrs.frozen
class DistBundle:
    manifest: Manifest
    zip_path: Path

    @property
    def zip_name(self) -> str:
        return zip_name(self.manifest.bundle_name)


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
    """The project's built bundles, complete and matching their manifests.

    Publishing refuses a dist/ that is incomplete (a configured function
    missing, a layer a function needs missing) or stale (a zip whose bytes
    are not the ones its manifest names), so what goes up is what was built.
    """
    folder = folder or project.dist_dir
    index = _read_index(folder)
    if index.get("app") != project.name:
        raise UsageError(f"{folder / INDEX_FILE} is a build of {index.get('app')!r}, not {project.name!r}", hint=_REBUILD)
    bundles = tuple(_listed_bundle(folder, entry) for entry in index.get("bundles", ()))
    _check_one_build(folder, index, bundles)
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


def _listed_bundle(folder: Path, entry: object) -> DistBundle:
    if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("zip", "manifest")):
        raise UsageError(f"{folder / INDEX_FILE}: a bundle entry without zip and manifest names", hint=_REBUILD)
    # A name in the index is a file name in dist/, nothing else.
    manifest_path = _in_dist(folder, entry["manifest"])
    zip_path = _in_dist(folder, entry["zip"])
    if not manifest_path.is_file() or not zip_path.is_file():
        raise UsageError(f"{folder}: {entry['zip']} or {entry['manifest']} is missing", hint=_REBUILD)
    try:
        doc = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UsageError(f"{manifest_path.name}: not JSON ({exc})", hint=_REBUILD) from None
    problems = schemas.errors("manifest", doc)
    if problems:
        raise UsageError(f"{manifest_path.name}: {schemas.key_path(problems[0])}: {problems[0].message}", hint=_REBUILD)
    manifest = Manifest.from_json(doc, what=f"{folder.name}/{manifest_path.name}")
    actual = sha256_file(zip_path)
    if actual != manifest.sha256 or zip_path.stat().st_size != manifest.zipped_size:
        raise UsageError(f"{zip_path.name} does not match its manifest (sha256 {actual[:12]}, manifest says "
                         f"{manifest.sha256[:12]})", hint="dist/ changed after the build; " + _REBUILD)
    return DistBundle(manifest=manifest, zip_path=zip_path)


def _in_dist(folder: Path, name: str) -> Path:
    if not SAFE_FILE.fullmatch(name):
        raise VerificationFailed(f"{folder / INDEX_FILE}: {names.shown(name)} is not a file name in {folder.name}/",
                                 hint="dist/ was edited after the build: " + _REBUILD)
    return folder / name


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


# -- reading one function (relay invoke) -------------------------------------------------------


@attrs.frozen
class FunctionBundle:
    """A function's zip in dist/ and the layer zips its manifest names, in order."""

    manifest: Manifest
    zip_path: Path
    layer_zips: tuple[Path, ...] = attrs.field(converter=to_tuple)


def function_bundle(project: Project, fn: Function) -> FunctionBundle:
    """The function's zip and manifest in dist/, and its layers' zips, checked against the manifest.

    Raises NotFound when a file is missing and VerificationFailed when a zip's
    bytes are not the ones the function's manifest names.
    """
    folder = project.dist_dir
    shown = os.path.relpath(folder, project.root)
    stem = bundle_name("function", fn.name, fn.architecture)
    zip_path, manifest_path = folder / zip_name(stem), folder / manifest_name(stem)
    if not zip_path.is_file() or not manifest_path.is_file():
        raise NotFound(
            f"{fn.name}: no build in {shown}/ ({zip_path.name} and its manifest are missing)",
            hint=f"Run `relay build {fn.name}` first: relay invoke runs what the build wrote, it does not build.",
        )
    manifest = Manifest.from_json(_read_json(manifest_path), what=f"{shown}/{manifest_path.name}")
    _check_digest(zip_path, manifest.sha256, shown)
    layer_zips = []
    for ref in manifest.layers:
        path = folder / zip_name(layer_stem(ref.name, manifest.architecture))
        if not path.is_file():
            raise NotFound(
                f"{fn.name}: layer {ref.name} ({ref.sha256[:12]}) is not in {shown}/",
                hint=f"Run `relay build {fn.name}`: it builds the function with its layers.",
            )
        _check_digest(path, ref.sha256, shown)
        layer_zips.append(path)
    return FunctionBundle(manifest, zip_path, layer_zips)


def _check_digest(path: Path, expected: str, shown: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise VerificationFailed(
            f"{shown}/{path.name} has sha256 {actual[:12]}, but the function's manifest says {expected[:12]}",
            hint="dist/ holds bundles from different builds: run `relay build` again.",
        )
