"""The ledger: an append-only record of every promotion, rollback and refusal, per app and environment.

Records live in the registry at `<prefix>/<app>/ledger/<env>/<seq:010d>.json`
and are written once with `If-None-Match: *`, so two runs can never both
write sequence N: the second put fails, and that is how a race is detected.

A run takes the environment by appending a "started" record at head + 1. It
may do so only when no other run holds it: the newest "started" record is
either closed (a terminal record names it in `opened`) or its lease has
expired (the run is presumed dead, and the new record says it `supersedes`
it). The run ends by appending its terminal record; refusals may have been
appended meanwhile, so the terminal record goes to the next free sequence:
a terminal record is never lost, and sequences have no gaps.

Why S3 and not a lock table: the registry bucket is the one place every
environment's deployer can already reach, and conditional puts give the
compare-and-swap needed without a second service.

Reading is cheap where it matters: finding whether a run is in progress reads
the records from the newest back to the newest "started" one (usually two
GETs after one LIST). Replaying the state (`live_state`, `previous_state`)
reads every record, in parallel.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from builder import schemas
from builder.aws.errors import PreconditionFailed
from builder.errors import RaceLost, UsageError, VerificationFailed
from builder.frozen import to_tuple
from builder.promote.records import (
    REFUSED,
    STARTED,
    SUCCEEDED,
    TERMINAL,
    FunctionChange,
    LedgerRecord,
    format_time,
    human_duration,
    parse_time,
    utcnow,
)
from builder.registry.release import canonical_json
from builder.registry.store import Store

DEFAULT_LEASE = dt.timedelta(minutes=30)
_RECORD_NAME = re.compile(r"^(\d{10})\.json$")
# A terminal record or a refusal retries at the next sequence this many times before giving up;
# each failed attempt means another record was appended, so this bounds a pathological storm only.
_APPEND_ATTEMPTS = 50
# `open` looks again when a refusal or a terminal record (not a competing run) took its sequence.
_OPEN_ATTEMPTS = 5
_READERS = 16


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


class Ledger:
    """The ledger of one app in one environment."""

    def __init__(self, store: Store, app: str, env: str, *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.store = store
        self.app = app
        self.env = env
        self.clock = clock
        self.prefix = store.layout.key(f"{app}/ledger/{env}/")

    @property
    def where(self) -> str:
        return f"{self.store.where}/{self.app}/ledger/{self.env}"

    def key(self, seq: int) -> str:
        return f"{self.prefix}{seq:010d}.json"

    # -- reading ----------------------------------------------------------------------------------

    def seqs(self) -> list[int]:
        """Every record's sequence number, ascending (one LIST per 1,000 records, no reads)."""
        found = []
        for info in self.store.list(self.prefix):
            match = _RECORD_NAME.match(info.key[len(self.prefix):])
            if match:
                found.append(int(match.group(1)))
        return sorted(found)

    def read(self, seq: int) -> LedgerRecord:
        """Record `seq`; NotFound when absent, VerificationFailed when it is not a valid record."""
        key = self.key(seq)
        return self._parse(self.store.read(key).body, key, seq)

    def read_optional(self, seq: int) -> LedgerRecord | None:
        key = self.key(seq)
        stored = self.store.read_optional(key)
        return None if stored is None else self._parse(stored.body, key, seq)

    def records(self) -> list[LedgerRecord]:
        """Every record, ascending by sequence."""
        return self._read_many(self.seqs())

    def tail(self, count: int) -> list[LedgerRecord]:
        """The newest `count` records, ascending."""
        return self._read_many(self.seqs()[-count:] if count > 0 else [])

    def head(self) -> LedgerRecord | None:
        seqs = self.seqs()
        return self.read(seqs[-1]) if seqs else None

    def running(self) -> LedgerRecord | None:
        """The "started" record of the run holding this environment (lease expired or not), if any."""
        return self._running(self.seqs())

    def recent(self, entries: int) -> list[LedgerRecord]:
        """Enough of the newest records to show `entries` history entries, with the started records they close."""
        found = {r.seq: r for r in self.tail(2 * entries)}
        missing = {r.opened for r in found.values() if r.opened is not None and r.opened not in found}
        found.update({r.seq: r for r in self._read_many(sorted(missing))})
        return [found[seq] for seq in sorted(found)]

    def _read_many(self, seqs: Sequence[int]) -> list[LedgerRecord]:
        if len(seqs) <= 1:
            return [self.read(seq) for seq in seqs]
        with ThreadPoolExecutor(max_workers=min(_READERS, len(seqs)), thread_name_prefix="relay-ledger") as pool:
            return list(pool.map(self.read, seqs))

    def _running(self, seqs: Sequence[int]) -> LedgerRecord | None:
        # Runs hold the environment one at a time, so only the newest "started" record can be open.
        closed: set[int] = set()
        for seq in reversed(seqs):
            record = self.read(seq)
            if record.is_terminal and record.opened is not None:
                closed.add(record.opened)
            elif record.status == STARTED:
                return None if record.seq in closed else record
        return None

    def _parse(self, body: bytes, key: str, seq: int) -> LedgerRecord:
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise VerificationFailed(f"{key}: not JSON ({exc})", hint=_CORRUPT_HINT) from None
        problems = schemas.errors("ledger", doc)
        if problems:
            first = problems[0]
            raise VerificationFailed(f"{key}: not a ledger record: {schemas.key_path(first)}: {first.message}",
                                     hint=_CORRUPT_HINT)
        record = LedgerRecord.from_json(doc)
        if (record.app, record.env, record.seq) != (self.app, self.env, seq):
            raise VerificationFailed(
                f"{key}: the record says {record.app}/{record.env} seq {record.seq}, its key says {self.app}/{self.env} seq {seq}",
                hint=_CORRUPT_HINT,
            )
        return record

    # -- writing ----------------------------------------------------------------------------------

    def open(
        self,
        *,
        event: str,
        actor: str,
        from_version: str | None,
        to_version: str | None,
        changes: Sequence[FunctionChange],
        reason: str = "",
        forced: bool = False,
        lease: dt.timedelta = DEFAULT_LEASE,
        take_over: bool = False,
    ) -> LedgerRecord:
        """Take the environment: append a "started" record, or raise RaceLost when another run holds it.

        `take_over` (a forced run only) supersedes a holder whose lease has not run
        out: for the on-call engineer rolling back after a promotion that died.
        """
        if forced and not reason.strip():
            raise UsageError("a forced run needs a reason", hint="Pass --reason TEXT with --force.")
        if take_over and not forced:
            raise ValueError("take_over needs forced=True and a reason")
        for _ in range(_OPEN_ATTEMPTS):
            seqs = self.seqs()
            now = self.clock()
            holder = self._running(seqs)
            if holder is not None and not holder.lease_expired(now) and not take_over:
                raise RaceLost(self._busy(holder, now), hint=_BUSY_HINT.format(env=self.env))
            record = LedgerRecord(
                seq=(seqs[-1] if seqs else 0) + 1, app=self.app, env=self.env, event=event, status=STARTED,
                actor=actor, at=format_time(now), from_version=from_version, to_version=to_version,
                changes=tuple(changes), reason=reason, forced=forced,
                lease_until=format_time(now + lease), supersedes=holder.seq if holder is not None else None,
            )
            winner = self._try_create(record)
            if winner is None:
                return record
            if winner.status == STARTED:
                raise RaceLost(
                    f"{self.env}: another run took the environment first: seq {winner.seq}, "
                    f"{_describe(winner)} by {winner.actor} at {winner.at}",
                    hint=_BUSY_HINT.format(env=self.env),
                )
            # A refusal or a terminal record took our sequence, not a competing run: look again.
        raise RaceLost(f"{self.env}: the ledger kept changing while this run tried to start ({self.where})",
                       hint=_BUSY_HINT.format(env=self.env))

    def close(
        self,
        opened: LedgerRecord,
        *,
        status: str,
        changes: Sequence[FunctionChange] | None = None,
        reason: str = "",
    ) -> LedgerRecord:
        """Append the terminal record of the run `opened` started, at the next free sequence."""
        if status not in TERMINAL:
            raise ValueError(f"close() takes a terminal status ({', '.join(TERMINAL)}), not {status!r}")
        if opened.status != STARTED:
            raise ValueError(f"close() takes the run's started record, not a {opened.status!r} record")
        record = LedgerRecord(
            seq=opened.seq + 1, app=self.app, env=self.env, event=opened.event, status=status, actor=opened.actor,
            at=format_time(self.clock()), from_version=opened.from_version, to_version=opened.to_version,
            changes=tuple(opened.changes if changes is None else changes),
            # A forced run's reason is kept on its terminal record too, so no one reads it without it.
            reason=reason or opened.reason, forced=opened.forced, opened=opened.seq,
        )
        seqs = self.seqs()
        earlier = self._closing(opened, seqs)
        if earlier is not None:
            # Closing twice (a retry after a reply was lost) must not record the outcome twice.
            if earlier.status != status:
                raise RaceLost(f"{self.env}: seq {opened.seq} was already closed as {earlier.status!r} at seq {earlier.seq}",
                               hint=_BUSY_HINT.format(env=self.env))
            return earlier
        return self._append(record, seqs)

    def refuse(
        self,
        *,
        event: str,
        actor: str,
        from_version: str | None,
        to_version: str | None,
        reason: str,
        changes: Sequence[FunctionChange] = (),
    ) -> LedgerRecord:
        """Record that a run was refused (a gate, a failed verification); it changed nothing."""
        record = LedgerRecord(
            seq=1, app=self.app, env=self.env, event=event, status=REFUSED, actor=actor,
            at=format_time(self.clock()), from_version=from_version, to_version=to_version,
            changes=tuple(changes), reason=reason,
        )
        return self._append(record, self.seqs())

    def _closing(self, opened: LedgerRecord, seqs: Sequence[int]) -> LedgerRecord | None:
        """The terminal record that already closes `opened`, if any (usually there is nothing after it to read)."""
        later = [seq for seq in seqs if seq > opened.seq]
        return next((r for r in self._read_many(later) if r.is_terminal and r.opened == opened.seq), None)

    def _append(self, record: LedgerRecord, seqs: Sequence[int]) -> LedgerRecord:
        """Write `record` at the first free sequence at or after its own, whatever else is appended meanwhile."""
        seq = max(record.seq, (seqs[-1] if seqs else 0) + 1)
        for _ in range(_APPEND_ATTEMPTS):
            candidate = attrs.evolve(record, seq=seq)
            if self._try_create(candidate) is None:
                return candidate
            seq += 1
        raise RaceLost(f"{self.env}: could not append a {record.status!r} record after {_APPEND_ATTEMPTS} attempts "
                       f"({self.where}); the ledger is being written very fast", hint=_BUSY_HINT.format(env=self.env))

    def _try_create(self, record: LedgerRecord) -> LedgerRecord | None:
        """None when `record` was written; else the record that holds its sequence."""
        key = self.key(record.seq)
        try:
            self.store.create(key, canonical_json(record.to_json()))
            return None
        except PreconditionFailed:
            winner = self.read_optional(record.seq)
        if winner == record:
            return None  # our own write, whose reply was lost and retried
        if winner is None:
            raise RaceLost(f"{key}: the conditional put failed but the record is absent", hint=_BUSY_HINT.format(env=self.env))
        return winner

    def _busy(self, holder: LedgerRecord, now: dt.datetime) -> str:
        lease = parse_time(holder.lease_until) if holder.lease_until else now
        return (f"{self.env} is being changed by another run: {_describe(holder)} by {holder.actor} since {holder.at} "
                f"(seq {holder.seq}; presumed dead after {holder.lease_until}, "
                f"in {human_duration(math.ceil((lease - now).total_seconds()))})")


_BUSY_HINT = ("Wait for it to finish (`relay history --env {env}`), then rerun; if that run died, "
              "`relay rollback --env {env} --force --reason TEXT` takes over.")
_CORRUPT_HINT = "Ledger records are written only by relay; check who else writes to the registry bucket."


def _describe(record: LedgerRecord) -> str:
    return f"{record.event} {record.from_version or '-'} -> {record.to_version or '-'}"


# -- replaying the ledger (pure) ------------------------------------------------------------------


def succeeded(records: Iterable[LedgerRecord]) -> list[LedgerRecord]:
    """The terminal records of runs that succeeded, in sequence order: the only ones that changed what is live."""
    return sorted((r for r in records if r.status == SUCCEEDED), key=lambda r: r.seq)


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


# -- history (pure) ---------------------------------------------------------------------------------


@attrs.frozen
class HistoryEntry:
    """One run (its started and terminal records) or one refusal."""

    first: LedgerRecord  # the started record, or the refused record; a terminal record whose start is unknown
    last: LedgerRecord | None  # the terminal record; None while running (or for a refusal)
    state: str  # succeeded | failed | reverted | refused | running | abandoned

    @property
    def outcome(self) -> LedgerRecord:
        return self.last or self.first

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
            state = last.status if last else ("abandoned" if record.lease_expired(now) else "running")
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

    def summary(self) -> str:
        from builder.textfmt import table

        if not self.entries:
            return f"No ledger records for {self.app} in {self.env}."
        rows = [_history_row(e) for e in self.entries]
        more = "\n(older entries exist: raise --limit)" if self.truncated else ""
        return table(rows, ["seq", "when (UTC)", "who", "event", "from -> to", "status", "reason, notes"]) + more


def _history_row(entry: HistoryEntry) -> list[str]:
    first, last = entry.first, entry.last
    seq = f"{first.seq}..{last.seq}" if last else str(first.seq)
    when = first.at.replace("T", " ").rstrip("Z")
    status = entry.state
    if last is not None and first.status == STARTED:
        status += f" after {human_duration((last.moment - first.moment).total_seconds())}"
    if entry.state == "running":
        status += f" (lease until {first.lease_until})"
    notes = []
    if first.forced:
        notes.append("FORCED")
    if first.supersedes:
        notes.append(f"supersedes seq {first.supersedes}")
    reason = entry.outcome.reason
    if last is not None and last.reason and last.reason != first.reason and first.reason:
        reason = f"{first.reason}; {last.reason}"
    if reason:
        notes.append(reason)
    moved = [c.function for c in entry.outcome.changes if c.moved]
    if moved and entry.state != REFUSED:
        notes.append(f"functions: {', '.join(moved)}")
    return [seq, when, short_actor(first.actor), first.event,
            f"{first.from_version or '-'} -> {first.to_version or '-'}", status, "; ".join(notes)]


def short_actor(arn: str) -> str:
    """`assumed-role/relay-deployer/ci` for `arn:aws:sts::222222222222:assumed-role/relay-deployer/ci`."""
    parts = arn.split(":", 5)
    return parts[5] if len(parts) == 6 and parts[0] == "arn" else arn


def read_history(ledger: Ledger, *, limit: int | None, now: dt.datetime | None = None) -> History:
    """The newest `limit` entries of `ledger` (every entry when None)."""
    now = now or ledger.clock()
    records = ledger.records() if limit is None else ledger.recent(limit + 1)
    entries = pair_records(records, now=now)
    truncated = limit is not None and len(entries) > limit
    return History(ledger.app, ledger.env, entries[:limit] if limit is not None else entries, truncated)
