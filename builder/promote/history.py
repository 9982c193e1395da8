"""A ledger as history (pure pairing): each run's started and terminal records, and each refusal.

`relay history` renders a `History` for people in the command layer
(`builder.commands.render.history`); `to_json()` is its `--json` form.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import attrs

from builder.frozen import to_tuple
from builder.promote.ledger import ACCEPTED, Ledger, Unreadable
from builder.promote.records import REFUSED, STARTED, LedgerRecord

RUNNING = "running"
DIED = "died"  # never closed and its lease ran out: presumed dead (the next run, or rollback --force, supersedes it)
SUPERSEDED = "superseded"  # never closed; a later run took the environment over from it
ABANDONED = DIED  # the older name


@attrs.frozen
class HistoryEntry:
    """One run (its started and terminal records) or one refusal."""

    first: LedgerRecord  # the started record, or the refused record; a terminal record whose start is unknown
    last: LedgerRecord | None  # the terminal record; None while running (or for a refusal)
    state: str  # succeeded | failed | reverted | refused | running | died | superseded
    superseded_by: int | None = None  # the seq of the run that took over from it

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
            # Who started the run: the base credentials' ARN and the CI run (None on records from before issue 12).
            "who": self.first.who.to_json() if self.first.who is not None else None,
            "started_at": self.first.at,
            "ended_at": self.last.at if self.last else (self.first.at if self.first.status == REFUSED else None),
            "from_version": self.first.from_version,
            "to_version": self.first.to_version,
            "forced": self.first.forced,
            "reason": outcome.reason,
            "supersedes": self.first.supersedes,
            "lease_until": self.first.lease_until,
            "changes": [c.to_json() for c in outcome.changes],
            "superseded_by": self.superseded_by,
            "run_id": self.first.run_id,
            # What reading its records found: ok, unsigned, bad signature, edited, missing predecessor, out of chain
            "checks": {str(r.seq): r.check for r in (self.first, self.last) if r is not None},
        }

    @property
    def checks(self) -> list[str]:
        """The problems reading its records found (none: empty)."""
        return [f"seq {r.seq} {r.check}" for r in (self.first, self.last) if r is not None and r.check not in ACCEPTED]


def pair_records(records: Sequence[LedgerRecord], *, now: dt.datetime) -> list[HistoryEntry]:
    """Runs and refusals, newest first (by the sequence each began at)."""
    by_seq = {r.seq: r for r in records}
    closing = {r.opened: r for r in records if r.is_terminal and r.opened is not None}
    superseding = {r.supersedes: r.seq for r in records if r.status == STARTED and r.supersedes is not None}
    entries = []
    for record in sorted(records, key=lambda r: r.seq):
        if record.status == REFUSED:
            entries.append(HistoryEntry(record, None, REFUSED))
        elif record.status == STARTED:
            last = closing.get(record.seq)
            by = superseding.get(record.seq)
            if last is not None:
                state = last.status
            elif by is not None:
                state = SUPERSEDED
            else:
                state = DIED if record.lease_expired(now) else RUNNING
            entries.append(HistoryEntry(record, last, state, by))
        elif record.opened not in by_seq:
            entries.append(HistoryEntry(record, None, record.status))  # its started record was not read
    return sorted(entries, key=lambda e: e.first.seq, reverse=True)


@attrs.frozen
class History:
    app: str
    env: str
    entries: tuple[HistoryEntry, ...] = attrs.field(converter=to_tuple)
    truncated: bool = False
    # Every record or key the read flagged (also those older than the entries shown), and what is untrusted now.
    flagged: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    problems: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    unreadable: tuple[Unreadable, ...] = attrs.field(default=(), converter=to_tuple)
    repair: str = ""

    @property
    def trusted(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {"app": self.app, "env": self.env, "truncated": self.truncated, "trusted": self.trusted,
                "flagged": list(self.flagged), "problems": list(self.problems),
                "unreadable": [u.to_json() for u in self.unreadable],
                "entries": [e.to_json() for e in self.entries]}


def read_history(ledger: Ledger, *, limit: int | None, now: dt.datetime | None = None) -> History:
    """The newest `limit` entries of `ledger` (every entry when None), each record checked (signature, chain).

    Every record is read: the chain is checked from the first one.
    """
    now = now or ledger.clock()
    scan = ledger.scan()
    entries = pair_records(scan.records, now=now)
    truncated = limit is not None and len(entries) > limit
    return History(ledger.app, ledger.env, entries[:limit] if limit is not None else entries, truncated,
                   scan.flagged, scan.problems, (*scan.unreadable, *scan.foreign),
                   ledger.repair_hint if scan.problems else "")
