"""Ledger records: JSON round trips, and the schema accepts what relay writes and nothing malformed."""

from __future__ import annotations

import attrs
import pytest
from ledger_helpers import SHA, T0, change, record

from builder import schemas
from builder.promote.records import FunctionChange, GateResult, LedgerRecord, format_time, human_duration, parse_time

SOAK_REFUSED = GateResult("soak", False, "orders has been live in staging for 20m, soak is 1h: 40m to go", "orders",
                          {"env": "staging", "live_since": "2026-11-26T19:10:00Z", "elapsed_seconds": 1200,
                           "soak_seconds": 3600})
ALARM_OK = GateResult("alarms", True, "alarm shop-errors is OK", "shop-errors", {"alarm": "shop-errors", "state": "OK"})


def _valid(doc) -> list[str]:
    return [e.message for e in schemas.errors("ledger", doc)]


@pytest.mark.parametrize("made", [
    record(1, status="started", changes=[change("orders", ("4", "1.0.0", SHA["a"]), ("5", "1.1.0", SHA["b"]))],
           from_version="1.0.0", to_version="1.1.0", reason="hotfix", forced=True),
    record(2, status="succeeded", opened=1, from_version="1.0.0", to_version="1.1.0",
           changes=[change("orders", ("4", "1.0.0", SHA["a"]), ("5", "1.1.0", SHA["b"])),
                    change("billing", (None, None, None), ("1", "1.1.0", SHA["c"]))]),
    record(3, status="refused", to_version="2.0.0-rc.1+build.7", reason="gates refused: requires: ..."),
    record(4, event="rollback", status="reverted", opened=3),
    record(5, status="started", supersedes=3),
    record(6, status="refused", to_version="1.1.0", reason="gate refused: soak: ...", gates=[SOAK_REFUSED, ALARM_OK]),
    record(7, status="started", forced=True, reason="INC-42", gates=[SOAK_REFUSED]),
])
def test_records_round_trip_and_validate(made: LedgerRecord):
    doc = made.to_json()

    assert _valid(doc) == []
    assert LedgerRecord.from_json(doc) == made
    assert doc["schema"] == "relay.ledger/v1"


@pytest.mark.parametrize("broken, why", [
    (lambda d: d.update(lease_until=None), "a started record without a lease"),
    (lambda d: d.update(opened=1), "a started record that closes another"),
    (lambda d: d.update(status="succeeded"), "a terminal record that closes nothing"),
    (lambda d: d.update(status="refused", lease_until=None, forced=True, reason=""), "forced without a reason"),
    (lambda d: d.update(seq=0), "sequence 0"),
    (lambda d: d.update(at="2026-11-26 19:30:00"), "a time that is not UTC ISO-8601"),
    (lambda d: d.update(to_version="v1.1"), "an app version that is not semver"),
    (lambda d: d["changes"][0].update(to_digest="XYZ"), "a digest that is not sha256 hex"),
    (lambda d: d["changes"][0].update(to_version="arn:aws:lambda:...:5"), "a Lambda version that is not a number"),
    (lambda d: d.update(extra=True), "an unknown field"),
    (lambda d: d.update(event="deploy"), "an unknown event"),
    (lambda d: d.update(gates=[{**SOAK_REFUSED.to_json(), "name": "vibes"}]), "an unknown gate"),
    (lambda d: d.update(gates=[{**SOAK_REFUSED.to_json(), "detail": ""}]), "a gate result without a message"),
    (lambda d: d.update(gates=[{**SOAK_REFUSED.to_json(), "evidence": {"nested": {"no": 1}}}]), "nested evidence"),
])
def test_the_schema_rejects_malformed_records(broken, why):
    doc = record(1, status="started", changes=[change("orders", (None, None, None), ("1", "1.0.0", SHA["a"]))],
                 to_version="1.0.0").to_json()
    assert _valid(doc) == []

    broken(doc)

    assert _valid(doc), why


def test_records_without_gate_results_keep_their_bytes():
    # Records written before gate results were kept have no "gates" key; relay writes them the same way.
    assert "gates" not in record(1, status="started").to_json()
    assert "gates" in record(2, status="refused", gates=[SOAK_REFUSED]).to_json()


def test_records_refuse_unknown_events_and_statuses():
    with pytest.raises(ValueError):
        attrs.evolve(record(1), status="done")
    with pytest.raises(ValueError):
        attrs.evolve(record(1), event="deploy")


def test_a_change_knows_whether_it_moved_the_alias():
    assert change("orders", ("4", "1.0.0", SHA["a"]), ("5", "1.1.0", SHA["b"])).moved
    assert not change("orders", ("4", "1.0.0", SHA["a"]), ("4", "1.1.0", SHA["a"])).moved
    assert FunctionChange.from_json(change("x", (None,) * 3, ("1", "1.0.0", SHA["a"])).to_json()).to_version == "1"


def test_times_are_utc_whole_seconds():
    assert format_time(T0.replace(microsecond=999)) == "2026-11-26T19:30:00Z"
    assert parse_time("2026-11-26T19:30:00Z") == T0
    with pytest.raises(ValueError):
        format_time(T0.replace(tzinfo=None))


@pytest.mark.parametrize("seconds, shown", [(0, "0s"), (59, "59s"), (600, "10m"), (3660, "1h 1m"), (90061, "1d 1h")])
def test_human_durations(seconds, shown):
    assert human_duration(seconds) == shown
