"""The remote build cache: one build per unique input across a fleet of CI runners.

An entry `<prefix>/<app>/cache/<build_key>.json` holds the manifest of a bundle
built from exactly those inputs (the build key hashes lock, source tree,
runtime, architecture and relay version) and points at its blob. Entries and
blobs are written once. A lookup returns the bytes only when they hash to the
manifest's sha256, so a damaged blob is a miss, never a wrong build.

The cache is as trustworthy as write access to the bucket: entries are not
signed (published releases are).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from builder.aws.errors import PreconditionFailed
from builder.errors import NotFound, VerificationFailed
from builder.models import Manifest
from builder.registry.release import canonical_json
from builder.registry.store import Store

CACHE_SCHEMA = "relay.cache/v1"


class RemoteCache:
    def __init__(self, store: Store) -> None:
        self.backend = store
        self.layout = store.layout

    def lookup(self, app: str, build_key: str) -> tuple[Manifest, bytes] | None:
        """The manifest and zip bytes built from `build_key`, or None (two GETs on a hit, one on a miss)."""
        entry = self.backend.read_optional(self.layout.cache_entry(app, build_key))
        if entry is None:
            return None
        try:
            doc = json.loads(entry.body)
            manifest = Manifest.from_json(doc["manifest"])
        except (ValueError, KeyError, TypeError, VerificationFailed):
            return None  # a malformed or unsafe entry is a miss: the bundle is built instead
        if doc.get("schema") != CACHE_SCHEMA or manifest.build_key != build_key:
            return None
        try:
            blob = self.backend.read(self.layout.blob(manifest.sha256)).body
        except NotFound:
            return None
        if hashlib.sha256(blob).hexdigest() != manifest.sha256:
            return None
        return manifest, blob

    def store(self, app: str, manifest: Manifest, zip_path: Path) -> bool:
        """Remember a built bundle; False when an entry for its build key exists already."""
        if not manifest.build_key:
            raise ValueError("a manifest without build_key cannot be cached")
        blob_key = self.layout.blob(manifest.sha256)
        if self.backend.head(blob_key) is None:
            # PreconditionFailed: written meanwhile by another runner: same key, same bytes.
            with contextlib.suppress(PreconditionFailed):
                self.backend.create_file(blob_key, zip_path, checksum_sha256=manifest.code_sha256)
        entry = {"schema": CACHE_SCHEMA, "blob": self.layout.relative(blob_key), "manifest": manifest.to_json()}
        try:
            self.backend.create(self.layout.cache_entry(app, manifest.build_key), canonical_json(entry))
        except PreconditionFailed:
            return False
        return True
