"""Replaying a ledger (pure): what is live, since when, and what a rollback goes back to.

Only the terminal records of runs that succeeded changed what is live; failed,
reverted and refused runs changed nothing. These functions take records read
by `builder.promote.ledger.Ledger` and touch nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from builder.promote.records import STARTED, SUCCEEDED, FunctionChange, LedgerRecord


@attrs.frozen
class LiveFunction:
    """What the ledger says is live for one function in one environment, and since when."""

    function: str
    artifact: str | None  # app version, "1.1.0"
    digest: str | None  # bundle sha256 hex
    lambda_version: str | None
    since: str  # `at` of the record that made this digest live

    def to_json(self) -> dict:
        return attrs.asdict(self)


def succeeded(records: Iterable[LedgerRecord]) -> list[LedgerRecord]:
    """The terminal records of runs that succeeded, in sequence order: the only ones that changed what is live."""
    return sorted((r for r in records if r.status == SUCCEEDED), key=lambda r: r.seq)


def open_run(records: Sequence[LedgerRecord]) -> LedgerRecord | None:
    """The newest "started" record no terminal record closes (a run going on, or one that died), if any.

    Runs hold the environment one at a time, so only the newest "started" record can be open;
    a later run that superseded it started after it, so it would be the newest.
    """
    closed = {r.opened for r in records if r.is_terminal and r.opened is not None}
    started = [r for r in records if r.status == STARTED]
    newest = max(started, key=lambda r: r.seq, default=None)
    return newest if newest is not None and newest.seq not in closed else None


def live_state(records: Sequence[LedgerRecord]) -> dict[str, LiveFunction]:
    """Per function, what the ledger says is live, and since when.

    Replays succeeded promotions and rollbacks; failed, reverted and refused
    runs changed nothing. A run that left a function on the same bytes (or
    moved it to another Lambda version of the same bytes) does not reset
    `since`: the digest has been live all along, which is what soak measures.
    A change to no version removes the function.
    """
    live: dict[str, LiveFunction] = {}
    for record in succeeded(records):
        for change in record.changes:
            if change.to_version is None and change.to_digest is None:
                live.pop(change.function, None)
                continue
            current = live.get(change.function)
            since = current.since if current is not None and current.digest == change.to_digest else record.at
            live[change.function] = LiveFunction(change.function, change.to_artifact, change.to_digest,
                                                 change.to_version, since)
    return live


def previous_state(records: Sequence[LedgerRecord], *, function: str) -> FunctionChange | None:
    """The change a rollback of `function` undoes: go back to its `from_*`. None when there is nothing to go back to.

    The rule: a rollback returns to what was live before the latest
    succeeded change that has not been undone yet. Each succeeded promotion
    that moved the function pushes its change on a stack; a rollback to the
    Lambda version some stacked change made live pops everything above that
    change (undoing them), so rolling back twice walks back two promotions,
    never back and forth. A rollback to a version no stacked change made
    live (`--to` an older release already unwound) is itself pushed, so the
    next rollback returns to where that rollback started.

    The result's `from_version` is None (and None is returned) when the
    earliest known change created the alias: there is no earlier version.
    """
    stack: list[FunctionChange] = []
    for record in succeeded(records):
        change = record.change(function)
        if change is None or not change.moved:
            continue
        if record.event == "rollback":
            undone = _landing(stack, change)
            if undone is not None:
                del stack[undone + 1:]
                continue
        stack.append(change)
    if not stack or stack[-1].from_version is None:
        return None
    return stack[-1]


def _landing(stack: list[FunctionChange], rollback: FunctionChange) -> int | None:
    """The index of the newest stacked change that made live what `rollback` went back to."""
    for index in range(len(stack) - 1, -1, -1):
        entry = stack[index]
        if (entry.to_version, entry.to_digest) == (rollback.to_version, rollback.to_digest):
            return index
    return None
