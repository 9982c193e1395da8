"""builder.aws against a real moto server: sessions per account, typed S3 calls, errors."""

from __future__ import annotations

import hashlib
import os

import pytest

from builder.aws.errors import PreconditionFailed
from builder.aws.s3 import MiB, S3Bucket, TransferSettings
from builder.aws.session import AwsTarget, RequestCounter, open_session
from builder.errors import AwsError, NotFound


def _account_of(session) -> str:
    return session.client("sts").get_caller_identity()["Account"]


def test_sessions_assume_a_role_into_each_account(aws):
    for name in ("registry", "staging", "prod"):
        session = open_session(AwsTarget(role=aws.role_arn(name), external_id="ext-123"))
        assert session.account == aws.account(name)
        assert _account_of(session) == aws.account(name)
        assert session.label == f"account {aws.account(name)}"


def test_a_bare_role_name_is_completed_with_the_account(aws):
    session = open_session(AwsTarget(role="relay-deployer", account=aws.account("staging")))
    assert _account_of(session) == aws.account("staging")
    with pytest.raises(AwsError, match="not an ARN"):
        open_session(AwsTarget(role="relay-deployer"))


def test_an_unknown_profile_is_a_clear_aws_error(aws):
    with pytest.raises(AwsError, match="profile 'nope' not found"):
        open_session(AwsTarget(profile="nope"))


def test_the_request_counter_counts_each_http_request(aws):
    counter = RequestCounter()
    session = open_session(AwsTarget(role=aws.role_arn("registry")), counter=counter)
    bucket = S3Bucket(session, "counted")
    bucket.ensure_bucket()
    bucket.put("a", b"1")
    assert bucket.head("a") is not None and bucket.head("b") is None
    ops = counter.by_operation()
    assert ops["sts.AssumeRole"] == 1 and ops["s3.PutObject"] == 1 and ops["s3.HeadObject"] == 2
    assert counter.attempts >= counter.total  # retries, if any, are attempts, not calls


@pytest.fixture
def bucket(aws) -> S3Bucket:
    session = open_session(AwsTarget(role=aws.role_arn("registry")))
    found = S3Bucket(session, "seam-tests", transfer=TransferSettings(multipart_threshold=6 * MiB, part_size=5 * MiB))
    assert found.ensure_bucket() is True
    assert found.ensure_bucket() is False
    return found


def test_conditional_puts(bucket):
    etag = bucket.put("k", b"one", if_none_match=True)
    with pytest.raises(PreconditionFailed) as caught:
        bucket.put("k", b"two", if_none_match=True)
    assert caught.value.exit_code == 10 and "s3://seam-tests/k" in caught.value.message
    with pytest.raises(PreconditionFailed):
        bucket.put("k", b"two", if_match='"0000"')
    bucket.put("k", b"three", if_match=etag)
    assert bucket.get("k").body == b"three"


def test_missing_objects_and_buckets_are_not_found(bucket, aws):
    assert bucket.get_optional("absent") is None
    with pytest.raises(NotFound, match="s3://seam-tests/absent"):
        bucket.get("absent")
    other = S3Bucket(bucket.session, "no-such-bucket")
    with pytest.raises(NotFound, match="no such bucket") as caught:
        other.get("x")
    assert "bucket" in caught.value.hint


def test_large_files_go_up_in_parallel_parts_write_once(bucket, tmp_path):
    data = os.urandom(13 * MiB)
    path = tmp_path / "big.zip"
    path.write_bytes(data)
    parts = []

    bucket.upload_file("big", path, on_part=lambda n, total: parts.append((n, total)))

    assert sorted(parts) == [(1, 3), (2, 3), (3, 3)]
    streamed = hashlib.sha256()
    for chunk in bucket.iter_chunks("big"):
        streamed.update(chunk)
    assert streamed.hexdigest() == hashlib.sha256(data).hexdigest()
    with pytest.raises(PreconditionFailed):
        bucket.upload_file("big", path)
    client = bucket.session.client("s3")
    assert client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", []) == []  # the loser's upload aborted


def test_listing_pages_lazily_in_key_order(bucket):
    for index in range(25):
        bucket.put(f"p/{index:03d}", b"")
    counter = RequestCounter()
    counted = S3Bucket(open_session(AwsTarget(role=bucket.session.target.role), counter=counter), bucket.name)

    first = next(iter(counted.list("p/", page_size=10)))
    assert first.key == "p/000" and counter.for_service("s3") == 1
    assert [o.key for o in counted.list("p/", page_size=10)] == [f"p/{i:03d}" for i in range(25)]
