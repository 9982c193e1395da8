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

Trust (issue 11). Each record is signed and chained, and checked on every read:

- the signature is embedded in the record (`signature`: a DSSE v1 signature
  over PAE("application/vnd.relay.ledger+json", the record's canonical JSON
  without it)), not an envelope next to it: one object, one conditional put,
  so there is never a moment where a record exists and its signature does
  not. Its own payload type keeps a ledger signature from ever verifying as a
  release statement's, and the other way round.
- the signer is the registry's signer (`registry.factory.choose_signer`: the
  KMS key, RELAY_SIGNING_KEY, or `relay local`'s key), and the keys are the
  release keys (`trusted_keys`). The deployer that promotes in CI is the
  pipeline that publishes, so it holds that key (or kms:Sign on it); an
  environment whose deployer must not hold the publisher's key lists its own
  key in `trusted_keys` and signs with it (RELAY_SIGNING_KEY in that
  pipeline): every trusted key verifies every ledger.
- each record names the sha256 of the stored bytes of the record before it
  (`prev`); the first names none.
- each record written since issue 12 says who started the run (`who`: the
  base credentials' ARN and the CI run, `builder.promote.actor`), inside what
  is signed: an edited `who` is an edited record. Older records have none.
- what a read finds is the record's `check`: ok, unsigned, bad signature
  (an untrusted key, or not a signature), edited (a trusted key's signature
  that no longer matches), missing predecessor (the record before it is
  gone), out of chain (it names another predecessor, or its body names
  another app, environment or sequence: replayed or inserted), corrupt
  (not a record). Keys that are not a 10-digit sequence, or a sequence far
  beyond the others (seq 9999999999), are foreign: listed, never ordered.
- records written before relay signed (no `run_id`) are "unsigned,
  pre-signing" and accepted only before the first signed record; an unsigned
  record after it is a problem like any other. `Ledger.records()` raises
  VerificationFailed (exit 8) when any record is not accepted, so gates
  and rollback fail closed; `scan()` returns everything for `relay history`.

A run's "started" record carries its `run_id`; only that run may close it
(`close` checks the run id, and loses with RaceLost, exit 10, when another
terminal record closed it or a later run superseded it). A write whose reply
was lost is recognised as the run's own by the run id and time, never by bytes
alone: two identical runs write different records.

What the records mean is elsewhere: `ledger_replay` (what is live, what a
rollback goes back to) and `history` (runs paired for `relay history`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from builder import schemas
from builder.aws.errors import PreconditionFailed
from builder.errors import RaceLost, VerificationFailed
from builder.frozen import to_tuple
from builder.promote.actor import started_by, who_of
from builder.promote.gates import Override
from builder.promote.records import (
    REFUSED,
    STARTED,
    TERMINAL,
    FunctionChange,
    GateResult,
    LedgerRecord,
    format_instant,
    format_time,
    human_duration,
    new_run_id,
    parse_time,
    utcnow,
)
from builder.registry.release import canonical_json
from builder.registry.signing import Signer, TrustedKeys, pae, signature_valid
from builder.registry.store import Store

DEFAULT_LEASE = dt.timedelta(minutes=30)
_RECORD_NAME = re.compile(r"^(\d{10})\.json$")
# A terminal record or a refusal retries at the next sequence this many times before giving up;
# each failed attempt means another record was appended, so this bounds a pathological storm only.
_APPEND_ATTEMPTS = 50
# `open` looks again when a refusal or a terminal record (not a competing run) took its sequence.
_OPEN_ATTEMPTS = 5
_READERS = 16
# A sequence more than this far beyond the one before it is foreign (a stray key such as 9999999999):
# runs append at head + 1, so an honest ledger has no gap at all, and a few deleted records leave small ones.
MAX_GAP = 1000
LEDGER_PAYLOAD_TYPE = "application/vnd.relay.ledger+json"

# What a read found (`LedgerRecord.check`).
OK = "ok"
UNSIGNED = "unsigned"
PRE_SIGNING = "unsigned, pre-signing"  # accepted: written before relay signed its ledger
BAD_SIGNATURE = "bad signature"
EDITED = "edited"
MISSING_PREDECESSOR = "missing predecessor"
OUT_OF_CHAIN = "out of chain"
CORRUPT = "corrupt"
ACCEPTED = (OK, PRE_SIGNING)

REPAIR_HINT = ("`relay history --env {env}` lists the flagged records; find who else writes under {where}. "
               "The ledger is append-only: a signed forced run over the damage repairs it: "
               "`relay rollback --env {env} --force --reason TEXT` (or `relay promote VERSION --env {env} --force "
               "--reason TEXT`) takes the lock and appends its records; problems before it stay listed but no "
               "longer fail the gates.")


@attrs.frozen
class Unreadable:
    """A key under the ledger that is not a record this ledger can use: its key, and why."""

    key: str
    seq: int | None
    check: str  # corrupt | out of chain | foreign
    detail: str
    digest: str | None = None  # sha256 of its bytes: the record after it may still chain to them


    def to_json(self) -> dict:
        return attrs.asdict(self)


@attrs.frozen
class LedgerScan:
    """Every record of a ledger, each with what its read found, and the keys that are not records."""

    records: tuple[LedgerRecord, ...] = attrs.field(converter=to_tuple)
    unreadable: tuple[Unreadable, ...] = attrs.field(default=(), converter=to_tuple)
    foreign: tuple[Unreadable, ...] = attrs.field(default=(), converter=to_tuple)

    @property
    def acknowledged(self) -> int:
        """The seq of the newest accepted forced "started" record: it took over knowing what was wrong before it.

        A forced run (`--force --reason`) that took the environment over a
        broken ledger is the repair: problems before it stay listed by
        `relay history` but no longer fail the gates. Only a trusted key
        signs an accepted record once the ledger is signed.
        """
        return max((r.seq for r in self.records if r.forced and r.status == STARTED and r.check in ACCEPTED), default=0)

    @property
    def flagged(self) -> list[str]:
        """One line per record not accepted, per key that is not a readable record, per foreign key."""
        found = [f"seq {r.seq}: {r.check}" for r in self.records if r.check not in ACCEPTED]
        found += [f"{u.key.rsplit('/', 1)[-1]}: {u.check} ({u.detail})" for u in (*self.unreadable, *self.foreign)]
        return found

    @property
    def problems(self) -> list[str]:
        """What makes the ledger untrustworthy: records after the last acknowledged take-over that are not accepted.

        Foreign keys are listed (`flagged`) but are not problems: they are never ordered nor replayed.
        """
        since = self.acknowledged
        found = [f"seq {r.seq}: {r.check}" for r in self.records if r.check not in ACCEPTED and r.seq > since]
        found += [f"{u.key.rsplit('/', 1)[-1]}: {u.check} ({u.detail})" for u in self.unreadable
                  if u.seq is None or u.seq > since]
        return found

    @property
    def head(self) -> int:
        """The newest ordered sequence (0: empty): what a run read its state at (`open(expect_head=...)`)."""
        return max([r.seq for r in self.records] + [u.seq for u in self.unreadable if u.seq is not None], default=0)

    @property
    def accepted(self) -> list[LedgerRecord]:
        return [r for r in self.records if r.check in ACCEPTED]


class Ledger:
    """The ledger of one app in one environment."""

    def __init__(self, store: Store, app: str, env: str, *, clock: Callable[[], dt.datetime] = utcnow,
                 signer: Signer | None = None, trusted: TrustedKeys | None = None) -> None:
        """`signer` signs what this ledger appends (None: unsigned records, as before issue 11);
        `trusted` checks signatures on read (None: signatures are not checked, the chain still is)."""
        self.store = store
        self.app = app
        self.env = env
        self.clock = clock
        self.signer = signer
        self.trusted = trusted
        self.prefix = store.layout.key(f"{app}/ledger/{env}/")

    @property
    def where(self) -> str:
        return f"{self.store.where}/{self.app}/ledger/{self.env}"

    def key(self, seq: int) -> str:
        return f"{self.prefix}{seq:010d}.json"

    # -- reading ----------------------------------------------------------------------------------

    def seqs(self) -> list[int]:
        """Every record's sequence number, ascending (one LIST per 1,000 records, no reads); foreign keys left out."""
        return self._listing()[0]

    def _listing(self) -> tuple[list[int], list[Unreadable]]:
        """The ordered sequences, and the foreign keys: not `<10 digits>.json`, or beyond a gap of MAX_GAP."""
        found, foreign = [], []
        for info in self.store.list(self.prefix):
            match = _RECORD_NAME.match(info.key[len(self.prefix):])
            if match:
                found.append(int(match.group(1)))
            else:
                foreign.append(Unreadable(info.key, None, "foreign", "not a ledger record's key"))
        ordered: list[int] = []
        for seq in sorted(found):
            if seq - (ordered[-1] if ordered else 0) > MAX_GAP:
                foreign.append(Unreadable(self.key(seq), seq, "foreign",
                                          f"seq {seq} is far beyond seq {ordered[-1] if ordered else 0}: left out of order"))
            else:
                ordered.append(seq)
        return ordered, foreign

    def read(self, seq: int) -> LedgerRecord:
        """Record `seq`; NotFound when absent, VerificationFailed when it is not a valid record."""
        key = self.key(seq)
        return self._parse(self.store.read(key).body, key, seq)

    def read_optional(self, seq: int) -> LedgerRecord | None:
        key = self.key(seq)
        stored = self.store.read_optional(key)
        return None if stored is None else self._parse(stored.body, key, seq)

    def records(self) -> list[LedgerRecord]:
        """Every record, ascending by sequence; VerificationFailed (exit 8) when any is not accepted."""
        scan = self.scan()
        if scan.problems:
            raise VerificationFailed(self.problem_message(scan), hint=self.repair_hint)
        return scan.accepted

    def problem_message(self, scan: LedgerScan) -> str:
        problems = scan.problems
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        return f"the ledger of {self.app} in {self.env} cannot be trusted: {shown}"

    @property
    def repair_hint(self) -> str:
        return REPAIR_HINT.format(where=self.where, env=self.env)

    def scan(self) -> LedgerScan:
        """Every record and what reading it found (signature, chain), without raising for what it found."""
        seqs, foreign = self._listing()
        found = self._read_many_raw(seqs)
        records: list[LedgerRecord] = []
        unreadable: list[Unreadable] = []
        for item in found:
            if isinstance(item, Unreadable):
                unreadable.append(item)
            else:
                records.append(item)
        return LedgerScan(chain_checked(records, {u.seq: u.digest for u in unreadable if u.seq is not None}),
                          unreadable, foreign)

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

    def _read_raw(self, seq: int) -> LedgerRecord | Unreadable:
        key = self.key(seq)
        stored = self.store.read_optional(key)
        if stored is None:
            return Unreadable(key, seq, MISSING_PREDECESSOR, "listed, then gone")
        try:
            return self._parse(stored.body, key, seq)
        except VerificationFailed as exc:
            check = OUT_OF_CHAIN if "its key says" in exc.message else CORRUPT
            return Unreadable(key, seq, check, exc.message.split(": ", 1)[-1], hashlib.sha256(stored.body).hexdigest())

    def _read_many_raw(self, seqs: Sequence[int]) -> list[LedgerRecord | Unreadable]:
        if len(seqs) <= 1:
            return [self._read_raw(seq) for seq in seqs]
        with ThreadPoolExecutor(max_workers=min(_READERS, len(seqs)), thread_name_prefix="relay-ledger") as pool:
            return list(pool.map(self._read_raw, seqs))

    def _running(self, seqs: Sequence[int], *, tolerant: bool = False) -> LedgerRecord | None:
        # Runs hold the environment one at a time, so only the newest "started" record can be open.
        # `tolerant` (a forced take-over): a record that cannot be read is passed over, not an error.
        closed: set[int] = set()
        for seq in reversed(seqs):
            found = self._read_raw(seq) if tolerant else self.read(seq)
            if isinstance(found, Unreadable):
                continue
            record = found
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
        if not isinstance(doc, dict):
            raise VerificationFailed(f"{key}: not a ledger record: not a JSON object", hint=_CORRUPT_HINT)
        problems = schemas.errors("ledger", doc)
        if problems:
            first = problems[0]
            raise VerificationFailed(f"{key}: not a ledger record: {schemas.key_path(first)}: {first.message}",
                                     hint=_CORRUPT_HINT)
        signature = doc.pop("signature", None)
        try:
            record = LedgerRecord.from_json(doc)
        except (ValueError, TypeError, KeyError) as exc:
            raise VerificationFailed(f"{key}: not a ledger record: {exc}", hint=_CORRUPT_HINT) from None
        if (record.app, record.env, record.seq) != (self.app, self.env, seq):
            raise VerificationFailed(
                f"{key}: the record says {record.app}/{record.env} seq {record.seq}, "
                f"its key says {self.app}/{self.env} seq {seq}",
                hint=_CORRUPT_HINT,
            )
        check, signed_by = self._signature_check(doc, signature)
        return attrs.evolve(record, digest=hashlib.sha256(body).hexdigest(), signed_by=signed_by, check=check)

    def _signature_check(self, doc: dict, signature: dict | None) -> tuple[str, str | None]:
        """(check, keyid): ok when a trusted key signed exactly this record; no trusted keys: not checked."""
        if signature is None:
            return UNSIGNED, None
        keyid = str(signature.get("keyid", ""))
        if self.trusted is None:
            return OK, keyid  # this reader was given no keys to check with (tests of the store alone)
        key = self.trusted.keys.get(keyid)
        if key is None:
            return BAD_SIGNATURE, keyid
        try:
            sig = base64.b64decode(signature.get("sig", ""), validate=True)
        except (binascii.Error, ValueError):
            return BAD_SIGNATURE, keyid
        return (OK if signature_valid(key, sig, _signed_bytes(doc)) else EDITED), keyid

    def _body(self, record: LedgerRecord) -> bytes:
        """The stored bytes of `record`: canonical JSON with its signature when this ledger has a signer."""
        doc = record.to_json()
        if self.signer is not None:
            sig = self.signer.sign(_signed_bytes(doc))
            doc["signature"] = {"keyid": self.signer.keyid, "sig": base64.b64encode(sig).decode("ascii")}
        return canonical_json(doc)

    def _prev(self, seqs: Sequence[int]) -> str | None:
        """The digest of the newest record's stored bytes (None for an empty ledger)."""
        if not seqs:
            return None
        stored = self.store.read_optional(self.key(seqs[-1]))
        return None if stored is None else hashlib.sha256(stored.body).hexdigest()

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
        run_id: str | None = None,
        expect_head: int | None = None,
    ) -> LedgerRecord:
        """Take the environment: append a "started" record, or raise RaceLost when another run holds it.

        `take_over` (a forced run only) supersedes a holder whose lease has not run
        out: for the on-call engineer rolling back after a promotion that died.
        `gates`: the gate results of the run (a forced run records which gates it overrode).
        `run_id`: this run's id (a new uuid4 when None); the started record carries it, and `close` checks it.
        `expect_head`: the head sequence the run planned from; when anything was appended since (another run
        came and went while this one planned), RaceLost: the plan is stale, and the started record goes only
        at `expect_head + 1` (a conditional put), so it cannot land after anything the run did not read.
        """
        Override(forced, reason)  # the one `--force needs --reason` rule
        if take_over and not forced:
            raise ValueError("take_over needs forced=True and a reason")
        run_id = run_id or new_run_id()
        for _ in range(_OPEN_ATTEMPTS):
            seqs = self.seqs()
            now = self.clock()
            if expect_head is not None and (seqs[-1] if seqs else 0) != expect_head:
                raise RaceLost(f"{self.env}: the ledger moved on while this run planned (seq {seqs[-1] if seqs else 0} "
                               f"now, seq {expect_head} when it read the environment): nothing was changed",
                               hint="Rerun the command: it plans again from what is there now.")
            holder = self._running(seqs, tolerant=take_over)
            if holder is not None and not holder.lease_expired(now) and not take_over:
                raise RaceLost(self._busy(holder, now), hint=_BUSY_HINT.format(env=self.env))
            record = LedgerRecord(
                seq=(seqs[-1] if seqs else 0) + 1, app=self.app, env=self.env, event=event, status=STARTED,
                actor=str(actor), at=format_instant(now), from_version=from_version, to_version=to_version,
                changes=tuple(changes), reason=reason, forced=forced,
                lease_until=format_time(now + lease), supersedes=holder.seq if holder is not None else None,
                gates=tuple(gates), run_id=run_id, prev=self._prev(seqs), who=who_of(actor),
            )
            winner = self._try_create(record)
            if winner is None:
                return record
            if winner.status == STARTED:
                raise RaceLost(
                    f"{self.env}: another run took the environment first: seq {winner.seq}, "
                    f"{_describe(winner)} by {_who(winner)} at {winner.at}",
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
        """Append the terminal record of the run `opened` started, at the next free sequence.

        Only the run holding the environment closes it: the stored started
        record must carry `opened`'s run id, and no other terminal record may
        close it, nor a later run supersede it (RaceLost, exit 10). A retry
        of this run's own close returns the record it already wrote.
        """
        if status not in TERMINAL:
            raise ValueError(f"close() takes a terminal status ({', '.join(TERMINAL)}), not {status!r}")
        if opened.status != STARTED:
            raise ValueError(f"close() takes the run's started record, not a {opened.status!r} record")
        seqs = self.seqs()
        stored = self.read_optional(opened.seq)
        if stored is None or stored.status != STARTED or stored.run_id != opened.run_id:
            raise RaceLost(f"{self.env}: seq {opened.seq} is not this run's started record (run {opened.run_id}); "
                           "another run holds the environment", hint=_BUSY_HINT.format(env=self.env))
        earlier = self._closing(opened, seqs)
        if earlier is not None:
            # Closing twice (a retry after a reply was lost) must not record the outcome twice.
            if earlier.run_id != opened.run_id or earlier.status != status:
                raise RaceLost(f"{self.env}: seq {opened.seq} was already closed as {earlier.status!r} at seq "
                               f"{earlier.seq}", hint=_BUSY_HINT.format(env=self.env))
            return earlier
        record = LedgerRecord(
            seq=opened.seq + 1, app=self.app, env=self.env, event=opened.event, status=status, actor=opened.actor,
            at=format_instant(self.clock()), from_version=opened.from_version, to_version=opened.to_version,
            changes=tuple(opened.changes if changes is None else changes),
            # A forced run's reason is kept on its terminal record too, so no one reads it without it.
            reason=reason or opened.reason, forced=opened.forced, opened=opened.seq, run_id=opened.run_id,
            who=opened.who,
        )
        return self._append(record, seqs, closing=opened)

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
        run_id: str | None = None,
    ) -> LedgerRecord:
        """Record that a run was refused (a gate, a failed verification); it changed nothing.

        `gates`: the gate results, when gates refused it (the evidence, not only the message).
        """
        record = LedgerRecord(
            seq=1, app=self.app, env=self.env, event=event, status=REFUSED, actor=str(actor),
            at=format_instant(self.clock()), from_version=from_version, to_version=to_version,
            changes=tuple(changes), reason=reason, gates=tuple(gates), run_id=run_id or new_run_id(),
            who=who_of(actor),
        )
        return self._append(record, self.seqs())

    def _closing(self, opened: LedgerRecord, seqs: Sequence[int]) -> LedgerRecord | None:
        """The terminal record that already closes `opened`, if any; RaceLost when a later run superseded it."""
        later = [seq for seq in seqs if seq > opened.seq]
        for record in self._read_many_raw(later):
            if isinstance(record, Unreadable):
                continue
            if record.is_terminal and record.opened == opened.seq:
                return record
            _refuse_superseded(record, opened, self.env)
        return None

    def _append(self, record: LedgerRecord, seqs: Sequence[int], *,
                closing: LedgerRecord | None = None) -> LedgerRecord:
        """Write `record` at the first free sequence at or after its own, whatever else is appended meanwhile.

        `closing`: the started record `record` closes; a run that superseded it meanwhile makes this RaceLost.
        """
        seq = max(record.seq, (seqs[-1] if seqs else 0) + 1)
        prev = self._prev([s for s in seqs if s < seq])
        for _ in range(_APPEND_ATTEMPTS):
            candidate = attrs.evolve(record, seq=seq, prev=prev)
            winner = self._try_create(candidate)
            if winner is None:
                return candidate
            if closing is not None:
                _refuse_superseded(winner, closing, self.env)
                if winner.is_terminal and winner.opened == closing.seq:
                    raise RaceLost(f"{self.env}: seq {closing.seq} was closed by seq {winner.seq} meanwhile",
                                   hint=_BUSY_HINT.format(env=self.env))
            seq, prev = seq + 1, winner.digest
        raise RaceLost(f"{self.env}: could not append a {record.status!r} record after {_APPEND_ATTEMPTS} attempts "
                       f"({self.where}); the ledger is being written very fast", hint=_BUSY_HINT.format(env=self.env))

    def _try_create(self, record: LedgerRecord) -> LedgerRecord | None:
        """None when `record` was written; else the record that holds its sequence (with its digest)."""
        key = self.key(record.seq)
        body = self._body(record)
        try:
            self.store.create(key, body)
            stored = self.store.read_optional(key)
            # Read back: S3's conditional put is atomic, but a store whose check and write are two steps
            # (moto's server, some S3-compatible stores) can let a second writer replace the first one's record.
            if stored is not None and stored.body == body:
                return None
        except PreconditionFailed:
            stored = self.store.read_optional(key)
        if stored is None:
            raise RaceLost(f"{key}: the conditional put failed but the record is absent", hint=_BUSY_HINT.format(env=self.env))
        try:
            winner = self._parse(stored.body, key, record.seq)
        except VerificationFailed:
            # Not a record (written by something else): this sequence is taken, the next one is free.
            return attrs.evolve(record, run_id=None, digest=hashlib.sha256(stored.body).hexdigest(), check=CORRUPT)
        if winner == record and record.run_id is not None:
            return None  # our own write (same run id, same microsecond), whose reply was lost and retried
        return winner

    def _busy(self, holder: LedgerRecord, now: dt.datetime) -> str:
        lease = parse_time(holder.lease_until) if holder.lease_until else now
        return (f"{self.env} is being changed by another run: {_describe(holder)} by {_who(holder)} since {holder.at} "
                f"(seq {holder.seq}; presumed dead after {holder.lease_until}, "
                f"in {human_duration(math.ceil((lease - now).total_seconds()))})")


_BUSY_HINT = ("Wait for it to finish (`relay history --env {env}`), then rerun; if that run died, "
              "`relay rollback --env {env} --force --reason TEXT` takes over and puts back what the last run "
              "that succeeded made live.")
_CORRUPT_HINT = "Ledger records are written only by relay; check who else writes to the registry bucket."


def _who(record: LedgerRecord) -> str:
    """The role session that ran it, and who started it when the record says (a person, a CI run)."""
    started = started_by(record.who) if record.who is not None else None
    return f"{record.actor} ({started})" if started else record.actor


def _refuse_superseded(record: LedgerRecord, opened: LedgerRecord, env: str) -> None:
    if record.status == STARTED and record.supersedes == opened.seq:
        raise RaceLost(f"{env}: seq {opened.seq} was superseded by the run that started at seq {record.seq} "
                       f"({_describe(record)} by {_who(record)}): this run no longer holds the environment",
                       hint=f"See `relay history --env {env}`; that run's outcome is recorded, not this one's.")


def _signed_bytes(doc: dict) -> bytes:
    """What a ledger signature covers: PAE over the record's canonical JSON without its signature."""
    body = {k: v for k, v in doc.items() if k != "signature"}
    return pae(LEDGER_PAYLOAD_TYPE, canonical_json(body))



def chain_checked(records: Sequence[LedgerRecord], unreadable: Mapping[int, str | None] | None = None) -> list[LedgerRecord]:
    """`records` (ascending) with each one's `check` settled against the record before it.

    A record whose own read found a problem keeps it. An unsigned record is
    accepted ("unsigned, pre-signing") only before the first signed record.
    A record that names a predecessor (every record relay writes since issue
    11 but the first) must name the digest of the record right before it:
    else "missing predecessor" (that record is gone or unreadable) or "out
    of chain". A signed record at seq > 1 always names one. `unreadable`:
    the digests of the records that could not be read, by seq (a record
    written over one, such as a forced take-over, still chains to its bytes).
    """
    unreadable = unreadable or {}
    out: list[LedgerRecord] = []
    by_seq = {r.seq: r for r in records}
    seen_signed = False
    for record in records:
        check = record.check
        signed = record.signed_by is not None and check == OK
        if check == UNSIGNED and not seen_signed:
            check = PRE_SIGNING
        if check in ACCEPTED and (record.prev is not None or signed):
            before = by_seq.get(record.seq - 1)
            if before is None and record.seq - 1 in unreadable:
                if record.prev != unreadable[record.seq - 1]:
                    check = OUT_OF_CHAIN
            elif before is None and record.seq > 1:
                check = MISSING_PREDECESSOR
            elif before is None and record.prev is not None:
                check = OUT_OF_CHAIN  # the first record names a predecessor: it came from elsewhere
            elif before is not None and record.prev != before.digest and before.check in ACCEPTED:
                check = OUT_OF_CHAIN
        seen_signed = seen_signed or signed
        out.append(attrs.evolve(record, check=check) if check != record.check else record)
    return out


def _describe(record: LedgerRecord) -> str:
    return f"{record.event} {record.from_version or '-'} -> {record.to_version or '-'}"
