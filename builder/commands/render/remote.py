"""`relay logs` and `relay invoke --env` as people read them: what is read or invoked, then the lines."""

from __future__ import annotations

from builder.remote.invoke import RemoteInvocation
from builder.remote.logs import LogSource, LogsResult
from builder.remote.records import LogEvent
from builder.remote.target import AliasTarget


def alias_versions(target: AliasTarget) -> str:
    """`version 3`, or `versions 3 (90%), 4 (10%)` during a canary."""
    if len(target.versions) == 1:
        return f"version {target.version}"
    return "versions " + ", ".join(f"{v} ({target.share(v):.0%})" for v in target.versions)


def logs_heading(source: LogSource) -> str:
    target = source.target
    return (f"Logs of {target.function_name} in {target.env} (account {target.account}, {target.region}): "
            f"alias {target.alias} -> {alias_versions(target)}; log group {source.log_group}")


def log_line(event: LogEvent) -> str:
    """`2026-11-30 09:00:01.250 [3] the line`: when (UTC), which version, what it printed."""
    when = event.time.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"{when} [{event.version}] {event.message.rstrip()}"


def no_lines_note(result: LogsResult) -> str:
    since = result.since.strftime("%Y-%m-%d %H:%M:%S UTC")
    if not result.log_group_found:
        return (f"no log group {result.source.log_group} yet: {result.source.target.function_name} has not logged "
                f"in {result.source.target.env}")
    return f"no lines of {alias_versions(result.source.target)} since {since} (try an earlier --since)"


def invocation_heading(outcome: RemoteInvocation) -> str:
    target = outcome.target
    ran = f"version {outcome.version}" if outcome.version else alias_versions(target)
    request = f", request {outcome.request_id}" if outcome.request_id else ""
    return (f"Invoked {target.function_name}:{target.alias} in {target.env} (account {target.account}, "
            f"{target.region}): {ran}{request}")
