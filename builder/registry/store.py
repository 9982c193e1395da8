"""The registry's seam to S3: reads, listings and write-once puts under one layout.

Publishing, verifying and the remote cache use only this protocol, so tests can
wrap a store to fail after the N-th write and prove that a publish killed at
any point leaves no visible half-version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import attrs

from builder.aws.errors import PreconditionFailed
from builder.aws.s3 import ObjectInfo, S3Bucket, StoredObject
from builder.registry.layout import Layout

JSON = "application/json"


class Store(Protocol):
    @property
    def layout(self) -> Layout:
        """Names every key (read-only: a frozen store or a test's wrapper both qualify)."""

    @property
    def where(self) -> str:
        """`s3://bucket/prefix`, for messages."""

    def head(self, key: str) -> ObjectInfo | None: ...

    def read(self, key: str) -> StoredObject:
        """NotFound when absent."""

    def read_optional(self, key: str) -> StoredObject | None: ...

    def iter_chunks(self, key: str) -> Iterator[bytes]: ...

    def list(self, prefix: str, *, page_size: int = 1000) -> Iterator[ObjectInfo]: ...

    def create(self, key: str, body: bytes, *, content_type: str = JSON) -> None:
        """Write once: PreconditionFailed when the key exists."""

    def create_file(self, key: str, path: Path, *, checksum_sha256: str | None = None,
                    on_part: Callable[[int, int], None] | None = None) -> None:
        """Write a file once (multipart when large): PreconditionFailed when the key exists."""


@attrs.frozen
class S3Store:
    bucket: S3Bucket
    layout: Layout

    @property
    def where(self) -> str:
        return f"s3://{self.bucket.name}/{self.layout.prefix}"

    def head(self, key: str) -> ObjectInfo | None:
        return self.bucket.head(key)

    def read(self, key: str) -> StoredObject:
        return self.bucket.get(key)

    def read_optional(self, key: str) -> StoredObject | None:
        return self.bucket.get_optional(key)

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        return self.bucket.iter_chunks(key)

    def list(self, prefix: str, *, page_size: int = 1000) -> Iterator[ObjectInfo]:
        return self.bucket.list(prefix, page_size=page_size)

    def create(self, key: str, body: bytes, *, content_type: str = JSON) -> None:
        self.bucket.put(key, body, if_none_match=True, content_type=content_type)

    def create_file(self, key: str, path: Path, *, checksum_sha256: str | None = None,
                    on_part: Callable[[int, int], None] | None = None) -> None:
        self.bucket.upload_file(key, path, if_none_match=True, checksum_sha256=checksum_sha256, on_part=on_part)


def create_or_read(store: Store, key: str, body: bytes, *, content_type: str = JSON) -> bytes | None:
    """Write `body` once. None when this call wrote it, else the bytes already there."""
    try:
        store.create(key, body, content_type=content_type)
        return None
    except PreconditionFailed:
        return store.read(key).body
