"""A ledger as history (pure pairing): each run's started and terminal records, and each refusal.

`relay history` renders a `History` for people in the command layer
(`builder.commands.render.history`); `to_json()` is its `--json` form.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import attrs

from builder.frozen import to_tuple
from builder.promote.ledger import Ledger
from builder.promote.records import REFUSED, STARTED, LedgerRecord

RUNNING = "running"
ABANDONED = "abandoned"


@attrs.frozen
class HistoryEntry:
    """One run (its started and terminal records) or one refusal."""

    first: LedgerRecord  # the started record, or the refused record; a terminal record whose start is unknown
    last: LedgerRecord | None  # the terminal record; None while running (or for a refusal)
    state: str  # succeeded | failed | reverted | refused | running | abandoned

    @property
    def outcome(self) -> LedgerRecord:
        return self.last or self.first

    @property
    def duration(self) -> float | None:
        """Seconds from the started record to the terminal one; None unless both are known."""
        if self.last is None or self.first.status != STARTED:
            return None
        return (self.last.moment - self.first.moment).total_seconds()

    def to_json(self) -> dict:
        outcome = self.outcome
        return {
            "seq": self.first.seq,
            "closed_seq": self.last.seq if self.last else None,
            "event": self.first.event,
            "state": self.state,
            "actor": self.first.actor,
            "started_at": self.first.at,
            "ended_at": self.last.at if self.last else (self.first.at if self.first.status == REFUSED else None),
            "from_version": self.first.from_version,
            "to_version": self.first.to_version,
            "forced": self.first.forced,
            "reason": outcome.reason,
            "supersedes": self.first.supersedes,
            "lease_until": self.first.lease_until,
            "changes": [c.to_json() for c in outcome.changes],
        }


def pair_records(records: Sequence[LedgerRecord], *, now: dt.datetime) -> list[HistoryEntry]:
    """Runs and refusals, newest first (by the sequence each began at)."""
    by_seq = {r.seq: r for r in records}
    closing = {r.opened: r for r in records if r.is_terminal and r.opened is not None}
    entries = []
    for record in sorted(records, key=lambda r: r.seq):
        if record.status == REFUSED:
            entries.append(HistoryEntry(record, None, REFUSED))
        elif record.status == STARTED:
            last = closing.get(record.seq)
            state = last.status if last else (ABANDONED if record.lease_expired(now) else RUNNING)
            entries.append(HistoryEntry(record, last, state))
        elif record.opened not in by_seq:
            entries.append(HistoryEntry(record, None, record.status))  # its started record was not read
    return sorted(entries, key=lambda e: e.first.seq, reverse=True)


@attrs.frozen
class History:
    app: str
    env: str
    entries: tuple[HistoryEntry, ...] = attrs.field(converter=to_tuple)
    truncated: bool = False

    def to_json(self) -> dict:
        return {"app": self.app, "env": self.env, "truncated": self.truncated,
                "entries": [e.to_json() for e in self.entries]}


def read_history(ledger: Ledger, *, limit: int | None, now: dt.datetime | None = None) -> History:
    """The newest `limit` entries of `ledger` (every entry when None)."""
    now = now or ledger.clock()
    records = ledger.records() if limit is None else ledger.recent(limit + 1)
    entries = pair_records(records, now=now)
    truncated = limit is not None and len(entries) > limit
    return History(ledger.app, ledger.env, entries[:limit] if limit is not None else entries, truncated)
