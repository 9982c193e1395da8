"""The ledger's records: one JSON document per promotion, rollback or refusal.

A run writes two records: a "started" record when it takes the environment
(with a lease: after `lease_until` a silent run is presumed dead) and a
terminal record ("succeeded", "failed", "reverted") that points back at it
with `opened`. A refusal (a gate, a failed verification) is one "refused"
record. `schemas/ledger.schema.json` describes the JSON form.

A record may carry the gate results that decided it (`GateResult`, the same
JSON as `relay promote --json`'s `gates`): a refusal by a gate says which
gates refused on what evidence; a forced run says which gates it overrode.

Since issue 11 every record carries the id of the run that wrote it
(`run_id`, a uuid4: two identical runs never write identical records, and a
retry is recognised by its run id, not by its bytes), a time to the
microsecond, the sha256 of the stored bytes of the record before it (`prev`,
None on the first record) and a signature (see `builder.promote.ledger`).
Records written before that have none of these and keep their bytes.

Since issue 12 a record also says who started the run (`who`, a
`builder.promote.actor.Who`): the ARN of the credentials relay started from,
before it assumed the environment's role (`actor` is that role's session),
and in CI the run's actor, URL and commit. It is signed like the rest of the
record; records written before it have no `who` and still verify.

Naming: on `LedgerRecord`, `from_version`/`to_version` are app (release)
versions such as "1.1.0"; on `FunctionChange` they are Lambda version numbers
such as "5", and `from_artifact`/`to_artifact` are the app versions.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import attrs

from builder.frozen import to_tuple
from builder.promote.actor import Who

LEDGER_SCHEMA = "relay.ledger/v1"

EVENTS = ("promote", "rollback")
STARTED = "started"
SUCCEEDED = "succeeded"
FAILED = "failed"
REVERTED = "reverted"
REFUSED = "refused"
TERMINAL = (SUCCEEDED, FAILED, REVERTED)
STATUSES = (STARTED, *TERMINAL, REFUSED)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def format_time(moment: dt.datetime) -> str:
    """`2026-11-26T19:30:00Z`: UTC, whole seconds (leases, gate evidence)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: relay records times in UTC only")
    return moment.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_instant(moment: dt.datetime) -> str:
    """`2026-11-26T19:30:00.123456Z`: UTC to the microsecond, a record's `at` (two runs never share one)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: relay records times in UTC only")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> dt.datetime:
    """Either form above (older records have whole seconds)."""
    shape = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in text else "%Y-%m-%dT%H:%M:%SZ"
    return dt.datetime.strptime(text, shape).replace(tzinfo=dt.UTC)


def new_run_id() -> str:
    return str(uuid.uuid4())


def _one_of(choices: tuple[str, ...]):
    return attrs.validators.in_(choices)


def _evidence(value: Mapping[str, Any] | tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
    # Sorted by key, as the stored JSON is: a record read back equals the record written.
    return tuple(sorted(value.items() if isinstance(value, Mapping) else value))


@attrs.frozen
class GateResult:
    """One gate's verdict on one subject (a function, an alarm), the evidence that decided it, and why.

    The gates (`builder.promote.gates`) produce these; `relay promote --json`
    lists them under `gates` and ledger records keep them, in this one shape.
    """

    name: str  # the gate: "requires" | "soak" | "alarms"
    ok: bool  # True: passed; False: refused
    detail: str  # the message a person reads
    subject: str | None = None  # what was checked: a function or an alarm name
    # The facts that decided it (digests, times, alarm states), as read.
    evidence: tuple[tuple[str, Any], ...] = attrs.field(default=(), converter=_evidence)

    @property
    def refused(self) -> bool:
        return not self.ok

    def to_json(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "subject": self.subject,
                "evidence": dict(self.evidence)}

    @classmethod
    def from_json(cls, doc: dict) -> GateResult:
        return cls(doc["name"], doc["ok"], doc["detail"], doc.get("subject"), doc.get("evidence") or {})


@attrs.frozen
class FunctionChange:
    """What one function's alias pointed at before and after a run."""

    function: str  # config name, e.g. "orders"
    from_version: str | None  # Lambda version the alias pointed at before ("5"); None: no alias
    to_version: str | None  # Lambda version after
    from_artifact: str | None  # app version before ("1.0.0")
    to_artifact: str | None
    from_digest: str | None  # bundle sha256 (hex) before
    to_digest: str | None
    # Promotions: sha256 of the settings the function ends up with, and the values the environment changed
    # from the release's recorded settings (None: none; older records have neither).
    settings_sha256: str | None = None
    settings: dict | None = attrs.field(default=None, hash=False)

    @property
    def moved(self) -> bool:
        """False when the function was part of the run but left alone (same version, same bytes)."""
        return (self.from_version, self.from_digest) != (self.to_version, self.to_digest)

    def to_json(self) -> dict:
        doc = attrs.asdict(self)
        for key in ("settings_sha256", "settings"):
            if doc[key] is None:
                del doc[key]  # rollbacks, and records written before relay recorded settings
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> FunctionChange:
        return cls(doc["function"], doc.get("from_version"), doc.get("to_version"), doc.get("from_artifact"),
                   doc.get("to_artifact"), doc.get("from_digest"), doc.get("to_digest"),
                   doc.get("settings_sha256"), doc.get("settings"))


@attrs.frozen
class LedgerRecord:
    seq: int
    app: str
    env: str
    event: str = attrs.field(validator=_one_of(EVENTS))  # "promote" | "rollback"
    status: str = attrs.field(validator=_one_of(STATUSES))
    actor: str  # caller identity ARN
    at: str  # "2026-11-26T19:30:00Z"
    from_version: str | None
    to_version: str | None
    changes: tuple[FunctionChange, ...] = attrs.field(default=(), converter=to_tuple)
    reason: str = ""
    forced: bool = False
    opened: int | None = None  # terminal records: the seq of the "started" record they close
    lease_until: str | None = None  # "started" records: after this the run is presumed dead
    supersedes: int | None = None  # "started" records: the open record of a run presumed dead
    gates: tuple[GateResult, ...] = attrs.field(default=(), converter=to_tuple)  # what decided a refusal or a forced run
    run_id: str | None = None  # the run that wrote it (uuid4); None on records written before issue 11
    prev: str | None = None  # sha256 (hex) of the stored bytes of the record before it; None: the first, or older
    # Who started the run: the base credentials' ARN and the CI run (issue 12); None on older records.
    who: Who | None = None
    # Set when read, not stored: the sha256 of the stored bytes, who signed them, and what the read found.
    digest: str | None = attrs.field(default=None, eq=False, repr=False)
    signed_by: str | None = attrs.field(default=None, eq=False, repr=False)
    check: str = attrs.field(default="ok", eq=False)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def moment(self) -> dt.datetime:
        return parse_time(self.at)

    def lease_expired(self, now: dt.datetime) -> bool:
        return self.lease_until is not None and parse_time(self.lease_until) <= now

    def change(self, function: str) -> FunctionChange | None:
        return next((c for c in self.changes if c.function == function), None)

    def to_json(self) -> dict:
        doc = {
            "schema": LEDGER_SCHEMA,
            "seq": self.seq,
            "app": self.app,
            "env": self.env,
            "event": self.event,
            "status": self.status,
            "actor": self.actor,
            "at": self.at,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "changes": [c.to_json() for c in self.changes],
            "reason": self.reason,
            "forced": self.forced,
            "opened": self.opened,
            "lease_until": self.lease_until,
            "supersedes": self.supersedes,
        }
        if self.gates:
            # Only when there are any: the records of runs no gate decided keep the bytes they always had.
            doc["gates"] = [g.to_json() for g in self.gates]
        for key in ("run_id", "prev"):
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)  # absent on older records, which keep their bytes
        if self.who is not None:
            doc["who"] = self.who.to_json()  # inside what the signature covers, like every other key
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> LedgerRecord:
        return cls(
            seq=doc["seq"],
            app=doc["app"],
            env=doc["env"],
            event=doc["event"],
            status=doc["status"],
            actor=doc["actor"],
            at=doc["at"],
            from_version=doc.get("from_version"),
            to_version=doc.get("to_version"),
            changes=tuple(FunctionChange.from_json(c) for c in doc.get("changes", ())),
            reason=doc.get("reason", ""),
            forced=doc.get("forced", False),
            opened=doc.get("opened"),
            lease_until=doc.get("lease_until"),
            supersedes=doc.get("supersedes"),
            gates=tuple(GateResult.from_json(g) for g in doc.get("gates", ())),
            run_id=doc.get("run_id"),
            prev=doc.get("prev"),
            who=Who.from_json(doc["who"]) if doc.get("who") is not None else None,
        )


def human_duration(seconds: float) -> str:
    """`45s`, `12m`, `1h 5m`, `2d 3h`: two units at most, rounded down."""
    total = max(int(seconds), 0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    shown = [f"{n}{unit}" for n, unit in parts[:2] if n or unit == parts[0][1]]
    return " ".join(shown)
