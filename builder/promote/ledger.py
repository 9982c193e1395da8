"""The ledger's store: an append-only record of every promotion, rollback and refusal, per app and environment.

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
GETs after one LIST). Replaying the state reads every record, in parallel.

What the records mean is elsewhere: `ledger_replay` (what is live, what a
rollback goes back to) and `history` (runs paired for `relay history`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from builder import schemas
from builder.aws.errors import PreconditionFailed
from builder.errors import RaceLost, VerificationFailed
from builder.promote.gates import Override
from builder.promote.records import (
    REFUSED,
    STARTED,
    TERMINAL,
    FunctionChange,
    GateResult,
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
                f"{key}: the record says {record.app}/{record.env} seq {record.seq}, "
                f"its key says {self.app}/{self.env} seq {seq}",
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
        gates: Sequence[GateResult] = (),
    ) -> LedgerRecord:
        """Take the environment: append a "started" record, or raise RaceLost when another run holds it.

        `take_over` (a forced run only) supersedes a holder whose lease has not run
        out: for the on-call engineer rolling back after a promotion that died.
        `gates`: the gate results of the run (a forced run records which gates it overrode).
        """
        Override(forced, reason)  # the one `--force needs --reason` rule
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
                gates=tuple(gates),
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
        gates: Sequence[GateResult] = (),
    ) -> LedgerRecord:
        """Record that a run was refused (a gate, a failed verification); it changed nothing.

        `gates`: the gate results, when gates refused it (the evidence, not only the message).
        """
        record = LedgerRecord(
            seq=1, app=self.app, env=self.env, event=event, status=REFUSED, actor=actor,
            at=format_time(self.clock()), from_version=from_version, to_version=to_version,
            changes=tuple(changes), reason=reason, gates=tuple(gates),
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
