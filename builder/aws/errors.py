"""botocore errors -> relay errors, with the operation and the resource named.

A failed conditional write (`If-None-Match`/`If-Match`) is not an AWS failure
but a signal that another writer got there first: callers catch
`PreconditionFailed` and decide. It derives from `RaceLost`, so one that is not
caught still tells the user the truth.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from builder.errors import AwsError, NotFound, RaceLost, RelayError

_NOT_FOUND = {"NoSuchKey", "404", "NotFound", "NoSuchBucket", "NotFoundException", "ResourceNotFoundException",
              "NoSuchEntity"}
_PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
_ACCESS = {"AccessDenied", "AccessDeniedException", "InvalidAccessKeyId", "SignatureDoesNotMatch",
           "ExpiredToken", "UnrecognizedClientException", "InvalidClientTokenId"}


class PreconditionFailed(RaceLost):
    """A conditional write lost: the object exists (If-None-Match) or changed (If-Match)."""

    hint = "Another relay run wrote the same object first; rerun to see its result."


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) or str(
        exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )


def translate(exc: Exception, *, operation: str, where: str) -> RelayError:
    """A relay error for a botocore failure of `operation` on `where` (account, bucket/key...)."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message") or code
        if code in _PRECONDITION:
            return PreconditionFailed(f"{operation} {where}: precondition failed (written by another run)")
        if code == "NoSuchBucket":
            return NotFound(f"{operation} {where}: no such bucket",
                            hint="Check [registry] bucket and region in relay.toml, and that the bucket exists.")
        if code in _NOT_FOUND:
            return NotFound(f"{operation} {where}: not found")
        if code in _ACCESS:
            return AwsError(f"{operation} {where}: {code}: {message}",
                            hint="Check the credentials, the role relay assumes and its permissions.")
        return AwsError(f"{operation} {where}: {code}: {message}")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return AwsError(f"{operation} {where}: no AWS credentials found",
                        hint="Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run inside a role.")
    if isinstance(exc, NoRegionError):
        return AwsError(f"{operation} {where}: no AWS region",
                        hint="Set region in relay.toml, pass --region, or set AWS_REGION / AWS_DEFAULT_REGION.")
    if isinstance(exc, EndpointConnectionError):
        return AwsError(f"{operation} {where}: cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}",
                        hint="Check the network, the region and AWS_ENDPOINT_URL.")
    return AwsError(f"{operation} {where}: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def aws_call(operation: str, where: str) -> Iterator[None]:
    """Run one AWS call; re-raise its botocore failure as a relay error."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, operation=operation, where=where) from exc
