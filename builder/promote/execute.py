"""Where the executor and `promote` used to live; split into modules named for what they hold (issue 8).

- `builder.promote.executor`: `Executor`, `Applied`, `ApplyFailed`, `CanaryAborted`
- `builder.promote.promoter`: `Promoter`, `PromoteRequest`, `PromoteResult`, `lease_for`
- `builder.promote.blobs`: `BlobSource`
- `builder.promote.outcome`: `close_after_failure`, `close_after_success`

These names stay importable from here only until the last importers move
(rollback.py, promote/factory.py, tests/promote/test_canary.py,
bench/promote_bench.py); then this module goes.
"""

from __future__ import annotations

from builder.promote.blobs import BlobSource
from builder.promote.executor import Applied, ApplyFailed, CanaryAborted, Executor
from builder.promote.outcome import close_after_failure, close_after_success
from builder.promote.promoter import Promoter, PromoteRequest, PromoteResult, lease_for

__all__ = [
    "Applied",
    "ApplyFailed",
    "BlobSource",
    "CanaryAborted",
    "Executor",
    "PromoteRequest",
    "PromoteResult",
    "Promoter",
    "close_after_failure",
    "close_after_success",
    "lease_for",
]
