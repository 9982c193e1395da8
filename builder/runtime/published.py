"""A function as published in a release, fetched from the registry and verified (`relay invoke --version V`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.bundle.digest import sha256_file
from builder.config import Function, Project
from builder.dist import FunctionBundle
from builder.errors import NotFound, VerificationFailed
from builder.fsutil import inside
from builder.progress import Reporter


def fetch_bundle(store: Any, trusted: Any, project: Project, fn: Function, version: str, into: Path,
                 reporter: Reporter | None = None) -> FunctionBundle:
    """Function `fn` and its layers as published in release `version`, verified, written under `into` only.

    The release's envelopes, manifests and blobs are verified against the
    trusted keys first (`relay verify --function`), then the bytes are fetched
    and checked against their sha256 once more.
    """
    from builder.registry.catalog import Catalog
    from builder.registry.verify import parse_manifest, verify_release

    verify_release(store, project.name, version, trusted, function=fn.name, reporter=reporter)
    entry = Catalog(store, project.name).read(version)
    release_fn = entry.release.function(fn.name) if entry is not None else None
    if entry is None or release_fn is None:
        raise NotFound(f"{project.name}@{version} has no function {fn.name}", hint="`relay versions` lists what exists.")
    manifest_key = store.layout.key(release_fn.manifest)
    manifest = parse_manifest(manifest_key, store.read(manifest_key).body)
    zip_path = _fetch_blob(store, release_fn.sha256, inside(into, f"{fn.name}.zip"))
    layer_zips = []
    for layer_bundle in release_fn.layers:
        layer = entry.release.layer(layer_bundle)
        if layer is None:
            raise VerificationFailed(f"{project.name}@{version}: function {fn.name} names layer {layer_bundle}, "
                                     "which the release does not hold", hint="Publish the release again.")
        layer_zips.append(_fetch_blob(store, layer.sha256, inside(into, f"{layer_bundle}.zip")))
    return FunctionBundle(manifest, zip_path, layer_zips)


def _fetch_blob(store: Any, sha256: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(store.read(store.layout.blob(sha256)).body)
    actual = sha256_file(dest)
    if actual != sha256:
        raise VerificationFailed(
            f"the registry's blob for {dest.name} has sha256 {actual[:12]}, but its manifest says {sha256[:12]}",
            hint="The registry's bytes changed after publishing: run `relay verify` and publish again.",
        )
    return dest
