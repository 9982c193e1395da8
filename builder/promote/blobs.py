"""Bundle bytes for the executor: read from the registry and checked against their sha256 on every read."""

from __future__ import annotations

import hashlib

from builder.errors import VerificationFailed
from builder.registry.store import Store


class BlobSource:
    """Verified bundle bytes from the registry: the sha256 is checked again after every download."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def fetch(self, sha256: str) -> bytes:
        key = self.store.layout.blob(sha256)
        data = self.store.read(key).body
        found = hashlib.sha256(data).hexdigest()
        if found != sha256:
            raise VerificationFailed(f"{key}: downloaded bytes hash to {found[:16]}, expected {sha256[:16]}",
                                     hint="The registry blob changed after verification: do not deploy it; check the registry.")
        return data
