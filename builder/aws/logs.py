"""CloudWatch Logs, in typed methods: the events of one log group, for `relay logs`.

The events are read from the whole group and the caller keeps the streams it
wants. Selecting streams on the server does not fit Lambda's names: a stream
is `<date>/[<version>]<id>`, so no `logStreamNamePrefix` selects a version,
and listing streams by `lastEventTimestamp` to name them (`logStreamNames`)
misses fresh ones, because AWS updates that field only eventually.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from builder.aws.errors import aws_call
from builder.aws.session import AwsSession
from builder.remote.records import LogEvent

# FilterLogEvents returns at most 10,000 events per page; fewer per page keeps a follower's first lines quick.
_PAGE = 1000


class CloudWatchLogs:
    """CloudWatch Logs in one account and region, reached through that account's session."""

    def __init__(self, session: AwsSession, *, account: str) -> None:
        self.session = session
        self.account = account
        self._client = session.client("logs")

    def where(self, group: str) -> str:
        return f"log group {group} (account {self.account}, {self.session.region})"

    def filter_events(self, group: str, *, start_ms: int, end_ms: int | None = None) -> Iterator[LogEvent]:
        """Every event of `group` from `start_ms` (inclusive) to `end_ms`, page by page, oldest first.

        A group that does not exist raises `NotFound` (Lambda creates it at the first line a function logs).
        """
        params: dict[str, Any] = {"logGroupName": group, "startTime": start_ms, "limit": _PAGE}
        if end_ms is not None:
            params["endTime"] = end_ms
        while True:
            with aws_call("logs:FilterLogEvents", self.where(group)):
                reply = self._client.filter_log_events(**params)
            for item in reply.get("events", ()):
                yield LogEvent(timestamp_ms=int(item["timestamp"]), stream=item.get("logStreamName", ""),
                               message=item.get("message", ""), event_id=str(item.get("eventId", "")))
            token = reply.get("nextToken")
            if not token or token == params.get("nextToken"):
                return
            params["nextToken"] = token
