"""S3, in typed methods: what the registry needs and nothing else.

Conditional writes are first-class (`if_none_match`, `if_match`): the registry
relies on them for write-once objects. Large files go up as a multipart upload
whose parts are sent in parallel; the upload is completed with
`If-None-Match: *`, so it is write-once too (boto3's transfer manager cannot
send that header, which is why the parts are driven here).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from builder.aws.errors import aws_call, error_code, translate
from builder.aws.session import AwsSession

MiB = 1024 * 1024


@attrs.frozen
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: dt.datetime


@attrs.frozen
class StoredObject:
    body: bytes
    info: ObjectInfo


@attrs.frozen
class TransferSettings:
    """When a file goes up in parts, how big the parts are, and how many go at once."""

    multipart_threshold: int = 16 * MiB
    part_size: int = 8 * MiB  # S3's minimum is 5 MiB for every part but the last
    concurrency: int = 8


class S3Bucket:
    """One bucket, reached through one session."""

    def __init__(self, session: AwsSession, bucket: str, *, transfer: TransferSettings = TransferSettings()) -> None:
        self.session = session
        self.name = bucket
        self.transfer = transfer
        self._client = session.client("s3")

    def where(self, key: str = "") -> str:
        return f"s3://{self.name}/{key} ({self.session.label})"

    # -- reads ---------------------------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo | None:
        """The object's size, ETag and date, or None when it does not exist."""
        try:
            reply = self._client.head_object(Bucket=self.name, Key=key)
        except ClientError as exc:
            if error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise translate(exc, operation="s3:HeadObject", where=self.where(key)) from exc
        except BotoCoreError as exc:
            raise translate(exc, operation="s3:HeadObject", where=self.where(key)) from exc
        return ObjectInfo(key, reply["ContentLength"], reply["ETag"], reply["LastModified"])

    def get(self, key: str) -> StoredObject:
        """The object's bytes; NotFound when it does not exist."""
        with aws_call("s3:GetObject", self.where(key)):
            reply = self._client.get_object(Bucket=self.name, Key=key)
            body = reply["Body"].read()
        return StoredObject(body, ObjectInfo(key, len(body), reply["ETag"], reply["LastModified"]))

    def get_optional(self, key: str) -> StoredObject | None:
        try:
            reply = self._client.get_object(Bucket=self.name, Key=key)
            body = reply["Body"].read()
        except ClientError as exc:
            if error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise translate(exc, operation="s3:GetObject", where=self.where(key)) from exc
        except BotoCoreError as exc:
            raise translate(exc, operation="s3:GetObject", where=self.where(key)) from exc
        return StoredObject(body, ObjectInfo(key, len(body), reply["ETag"], reply["LastModified"]))

    def iter_chunks(self, key: str, chunk_size: int = MiB) -> Iterator[bytes]:
        """The object's bytes in chunks, without holding it all in memory."""
        with aws_call("s3:GetObject", self.where(key)):
            body = self._client.get_object(Bucket=self.name, Key=key)["Body"]
            try:
                yield from body.iter_chunks(chunk_size)
            finally:
                body.close()

    def list(self, prefix: str, *, start_after: str | None = None, page_size: int = 1000) -> Iterator[ObjectInfo]:
        """Objects under `prefix` in key order, fetched one page at a time as the caller reads on."""
        params: dict[str, Any] = {"Bucket": self.name, "Prefix": prefix, "MaxKeys": page_size}
        if start_after:
            params["StartAfter"] = start_after
        while True:
            with aws_call("s3:ListObjectsV2", self.where(prefix)):
                reply = self._client.list_objects_v2(**params)
            for item in reply.get("Contents", ()):
                yield ObjectInfo(item["Key"], item["Size"], item["ETag"], item["LastModified"])
            if not reply.get("IsTruncated"):
                return
            params["ContinuationToken"] = reply["NextContinuationToken"]

    # -- writes --------------------------------------------------------------------------------

    def put(
        self,
        key: str,
        body: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        content_type: str = "application/octet-stream",
        checksum_sha256: str | None = None,
    ) -> str:
        """Write `body`; with `if_none_match` only when the key is absent. Returns the ETag.

        A lost condition raises PreconditionFailed. `checksum_sha256` (base64) makes S3
        refuse bytes that were corrupted on the way.
        """
        params: dict[str, Any] = {"Bucket": self.name, "Key": key, "Body": body, "ContentType": content_type}
        if if_none_match:
            params["IfNoneMatch"] = "*"
        if if_match:
            params["IfMatch"] = if_match
        if checksum_sha256:
            params["ChecksumSHA256"] = checksum_sha256
        with aws_call("s3:PutObject", self.where(key)):
            return self._client.put_object(**params)["ETag"]

    def upload_file(
        self,
        key: str,
        path: Path,
        *,
        if_none_match: bool = True,
        content_type: str = "application/zip",
        checksum_sha256: str | None = None,
        on_part: Callable[[int, int], None] | None = None,
    ) -> None:
        """Upload a file: one PUT when small, else parallel multipart parts. Write-once by default."""
        size = path.stat().st_size
        if size < self.transfer.multipart_threshold:
            self.put(key, path.read_bytes(), if_none_match=if_none_match, content_type=content_type,
                     checksum_sha256=checksum_sha256)
            return
        self._multipart(key, path, size, if_none_match=if_none_match, content_type=content_type, on_part=on_part)

    def _multipart(
        self, key: str, path: Path, size: int, *, if_none_match: bool, content_type: str,
        on_part: Callable[[int, int], None] | None,
    ) -> None:
        where = self.where(key)
        with aws_call("s3:CreateMultipartUpload", where):
            upload_id = self._client.create_multipart_upload(Bucket=self.name, Key=key, ContentType=content_type)["UploadId"]
        part_size = max(self.transfer.part_size, 5 * MiB)
        offsets = list(range(0, size, part_size))
        try:
            def upload(number: int, offset: int) -> str:
                return self._upload_part(key, path, upload_id, number, offset, part_size, len(offsets), on_part)

            with ThreadPoolExecutor(max_workers=self.transfer.concurrency, thread_name_prefix="relay-part") as pool:
                etags = list(pool.map(upload, range(1, len(offsets) + 1), offsets))
            params: dict[str, Any] = {
                "Bucket": self.name, "Key": key, "UploadId": upload_id,
                "MultipartUpload": {"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, start=1)]},
            }
            if if_none_match:
                params["IfNoneMatch"] = "*"
            with aws_call("s3:CompleteMultipartUpload", where):
                self._client.complete_multipart_upload(**params)
        except BaseException:
            self._abort(key, upload_id)
            raise

    def _upload_part(
        self, key: str, path: Path, upload_id: str, number: int, offset: int, part_size: int, parts: int,
        on_part: Callable[[int, int], None] | None,
    ) -> str:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(part_size)
        with aws_call("s3:UploadPart", f"{self.where(key)} part {number}"):
            etag = self._client.upload_part(Bucket=self.name, Key=key, UploadId=upload_id, PartNumber=number, Body=data)["ETag"]
        if on_part is not None:
            on_part(number, parts)
        return etag

    def _abort(self, key: str, upload_id: str) -> None:
        # Best effort: an abandoned upload costs storage until a lifecycle rule removes it.
        with contextlib.suppress(ClientError, BotoCoreError):
            self._client.abort_multipart_upload(Bucket=self.name, Key=key, UploadId=upload_id)

    def delete(self, key: str) -> None:
        with aws_call("s3:DeleteObject", self.where(key)):
            self._client.delete_object(Bucket=self.name, Key=key)

    def ensure_bucket(self) -> bool:
        """Create the bucket when it does not exist (local use and demos). True when created."""
        try:
            self._client.head_bucket(Bucket=self.name)
            return False
        except ClientError as exc:
            if error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
                raise translate(exc, operation="s3:HeadBucket", where=self.where()) from exc
        params: dict[str, Any] = {"Bucket": self.name}
        region = self.session.region
        if region and region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        with aws_call("s3:CreateBucket", self.where()):
            self._client.create_bucket(**params)
        return True
