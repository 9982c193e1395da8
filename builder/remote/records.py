"""What CloudWatch Logs and Lambda's Invoke return, as relay reads them: plain frozen records, no boto3.

`builder/aws/logs.py` and `builder/aws/lambda_remote.py` fill them; the
logic in `builder/remote/` reads them without importing anything of `builder/aws/`.
"""

from __future__ import annotations

import datetime as dt
import re

import attrs

# Lambda names a log stream `<yyyy>/<mm>/<dd>/[<version>]<instance id>`: the version is the one that ran.
_STREAM_VERSION = re.compile(r"/\[(\$LATEST|\d+)\][^/]*$")


def stream_version(stream: str) -> str | None:
    """The function version a Lambda log stream belongs to (`3`, `$LATEST`), or None for a stream of another shape."""
    match = _STREAM_VERSION.search(stream)
    return match.group(1) if match else None


@attrs.frozen
class LogEvent:
    """One CloudWatch Logs event: when, in which stream, the line (as the function wrote it)."""

    timestamp_ms: int
    stream: str
    message: str
    event_id: str = ""

    @property
    def time(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.timestamp_ms / 1000, dt.UTC)

    @property
    def version(self) -> str | None:
        return stream_version(self.stream)

    @property
    def key(self) -> tuple[str, int, str, str]:
        """What tells two deliveries of one event apart from two events (ids alone repeat across streams in moto)."""
        return (self.stream, self.timestamp_ms, self.event_id, self.message)

    def to_json(self) -> dict:
        return {"time": self.time.isoformat().replace("+00:00", "Z"), "timestamp_ms": self.timestamp_ms,
                "stream": self.stream, "version": self.version, "message": self.message.rstrip("\n")}


@attrs.frozen
class InvokeReply:
    """Lambda's reply to a synchronous Invoke with `LogType=Tail`."""

    status_code: int
    payload: bytes
    function_error: str | None = None  # "Unhandled" (or "Handled") when the function failed
    log_tail: str = ""  # the last 4 KB of the invocation's log, decoded
    executed_version: str | None = None
    request_id: str = ""
