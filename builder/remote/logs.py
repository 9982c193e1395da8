"""`relay logs`: the CloudWatch Logs lines of the versions an environment's alias serves.

Lambda writes each version's output to streams named `<date>/[<version>]<id>`
in the function's log group, so the lines of what the alias serves (both
versions during a canary) are the events of those streams. A follower polls:
each poll reads again a little before the newest line it showed, because
CloudWatch can deliver a line after later ones, and skips what it showed;
between polls it reads the alias again, so a canary step or a promotion
changes the versions it follows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from typing import Protocol

import attrs

from builder.config import Environment, Function
from builder.errors import NotFound, UsageError
from builder.frozen import to_tuple
from builder.promote.canary import Clock
from builder.remote.records import LogEvent
from builder.remote.target import AliasReader, AliasTarget, alias_target

FOLLOW_INTERVAL = 2.0  # seconds between polls, as `sam logs --tail`
LATE_MS = 30_000  # how far before its newest line a follower reads again, for lines CloudWatch delivers late
_AGO = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class LogGroups(Protocol):
    def log_group(self, name: str, qualifier: str) -> str: ...


class LogEvents(Protocol):
    def filter_events(self, group: str, *, start_ms: int, end_ms: int | None = None) -> Iterable[LogEvent]: ...


def parse_since(value: str, now: dt.datetime) -> dt.datetime:
    """`10m`, `1h`, `2d` (that long before `now`), or an ISO 8601 time (UTC when it names no zone)."""
    match = _AGO.match(value)
    if match:
        return now - dt.timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"--since {value!r}: neither a duration nor an ISO 8601 time",
                         hint="Use e.g. --since 10m, --since 2h, --since 1d or --since 2026-11-30T09:00:00Z.") from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def to_ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


@attrs.frozen
class LogSource:
    """Where the alias' lines are: its versions and the function's log group."""

    target: AliasTarget
    log_group: str

    def wants(self, event: LogEvent) -> bool:
        return event.version in self.target.versions

    def to_json(self) -> dict:
        return {**self.target.to_json(), "log_group": self.log_group}


@attrs.frozen
class LogsResult:
    """The alias' lines from `since` until the read, oldest first."""

    source: LogSource
    since: dt.datetime
    events: tuple[LogEvent, ...] = attrs.field(converter=to_tuple)
    log_group_found: bool = True

    def to_json(self) -> dict:
        return {**self.source.to_json(), "since": self.since.isoformat().replace("+00:00", "Z"),
                "log_group_found": self.log_group_found, "events": [e.to_json() for e in self.events]}


class RemoteLogs:
    """One function's logs in one environment: read once, or followed."""

    def __init__(self, env: Environment, function: Function, *, lam: AliasReader, groups: LogGroups,
                 events: LogEvents, clock: Clock) -> None:
        self.env = env
        self.function = function
        self._lam = lam
        self._groups = groups
        self._events = events
        self.clock = clock

    def source(self, known: LogSource | None = None) -> LogSource:
        """The alias' versions now, and its log group (read again only when the versions changed since `known`)."""
        target = alias_target(self.env, self.function, self._lam)
        if known is not None and known.target == target:
            return known
        return LogSource(target, self._groups.log_group(target.function_name, target.alias))

    def read(self, since: dt.datetime) -> LogsResult:
        source = self.source()
        found = self._read(source, to_ms(since), end_ms=to_ms(self.clock.now()))
        events = [e for e in found or () if source.wants(e)]
        return LogsResult(source, since, events, log_group_found=found is not None)

    def follow(self, since: dt.datetime, *, interval: float = FOLLOW_INTERVAL) -> Iterator[LogSource | LogEvent]:
        """The source, then each new line of its versions as it arrives, and the source again whenever it changes.

        Runs until the caller stops iterating (Ctrl-C in the CLI).
        """
        source = self.source()
        yield source
        start = to_ms(since)
        newest = start
        shown: dict[tuple[str, int, str, str], int] = {}
        while True:
            for event in self._read(source, max(start, newest - LATE_MS)) or ():
                if event.key in shown or not source.wants(event):
                    continue
                shown[event.key] = event.timestamp_ms
                newest = max(newest, event.timestamp_ms)
                yield event
            shown = {key: ms for key, ms in shown.items() if ms >= newest - LATE_MS}
            self.clock.sleep(interval)
            current = self.source(source)
            if current != source:
                source = current
                yield source

    def _read(self, source: LogSource, start_ms: int, *, end_ms: int | None = None) -> list[LogEvent] | None:
        """The group's events in order, or None when the group does not exist (the function has not logged yet)."""
        try:
            found = list(self._events.filter_events(source.log_group, start_ms=start_ms, end_ms=end_ms))
        except NotFound:
            return None
        return sorted(found, key=lambda e: (e.timestamp_ms, e.stream))
