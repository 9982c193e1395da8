"""Gates from the ledger (pure): requires, soak, refusals and --force."""

from __future__ import annotations

import datetime as dt

import pytest
from ledger_helpers import SHA, T0, change, record

from builder.config import Environment
from builder.errors import GateRefused, UsageError
from builder.promote.gates import GateCheck, check_gates, enforce, refusal_message

PROD = Environment(name="prod", account="333333333333", region="us-east-1", requires="staging", soak=3600)
NONE = (None, None, None)
DIGESTS_110 = {"orders": SHA["b"], "billing": SHA["d"]}


def staging(*, minutes_ago: float, now: dt.datetime):
    """staging's ledger: 1.0.0 long ago; 1.1.0 (orders changed, billing the same bytes) `minutes_ago`."""
    then = now - dt.timedelta(minutes=minutes_ago)
    old = now - dt.timedelta(days=3)
    return [
        record(1, status="started", at=old),
        record(2, at=old, changes=[change("orders", NONE, ("1", "1.0.0", SHA["a"])),
                                   change("billing", NONE, ("1", "1.0.0", SHA["d"]))]),
        record(3, status="started", at=then),
        record(4, at=then, changes=[change("orders", ("1", "1.0.0", SHA["a"]), ("2", "1.1.0", SHA["b"])),
                                    change("billing", ("1", "1.0.0", SHA["d"]), ("1", "1.1.0", SHA["d"]))]),
    ]


def by_function(checks: list[GateCheck]) -> dict[tuple[str, str], GateCheck]:
    return {(c.name, next(f for f in ("orders", "billing") if f in c.detail)): c for c in checks}


def test_all_gates_pass_when_staging_ran_the_same_bytes_long_enough():
    now = T0
    checks = check_gates(PROD, digests=DIGESTS_110, artifact="1.1.0",
                         required_records=staging(minutes_ago=61, now=now), now=now)

    assert [c.ok for c in checks] == [True] * 4
    found = by_function(checks)
    assert "staging runs orders sha256 bbbbbbbbbbbb.. (1.1.0) since" in found["requires", "orders"].detail
    assert "live in staging for 1h 1m (soak 1h)" in found["soak", "orders"].detail
    assert "for 3d" in found["soak", "billing"].detail  # same bytes since 1.0.0: soak counts from then
    enforce(checks, force=False, reason=None)


def test_soak_not_yet_passed_says_how_long_remains():
    now = T0
    checks = check_gates(PROD, digests=DIGESTS_110, artifact="1.1.0",
                         required_records=staging(minutes_ago=20, now=now), now=now)

    soak = by_function(checks)["soak", "orders"]
    assert not soak.ok
    assert soak.detail == "orders has been live in staging for 20m, soak is 1h: 40m to go"
    assert by_function(checks)["soak", "billing"].ok
    with pytest.raises(GateRefused) as caught:
        enforce(checks, force=False, reason=None)
    assert caught.value.exit_code == 9
    assert "40m to go" in caught.value.message


def test_requires_refuses_what_staging_never_ran():
    checks = check_gates(PROD, digests={"orders": SHA["b"]}, artifact="1.1.0", required_records=[], now=T0)

    assert checks == [GateCheck("requires", False,
                                "staging has not run orders sha256 bbbbbbbbbbbb.. (1.1.0): orders was never promoted there")]


def test_requires_refuses_other_bytes_in_staging():
    records = staging(minutes_ago=600, now=T0)
    checks = check_gates(PROD, digests={"orders": SHA["c"], "billing": SHA["d"]}, artifact="1.2.0",
                         required_records=records, now=T0)

    found = by_function(checks)
    assert not found["requires", "orders"].ok
    assert found["requires", "orders"].detail == (
        "staging has not run orders sha256 cccccccccccc.. (1.2.0): it runs sha256 bbbbbbbbbbbb.. (1.1.0)")
    assert ("soak", "orders") not in found  # nothing to soak
    assert found["requires", "billing"].ok and found["soak", "billing"].ok


def test_runs_that_did_not_succeed_do_not_satisfy_requires():
    records = [record(1, status="started"),
               record(2, status="reverted", changes=[change("orders", NONE, ("1", "1.1.0", SHA["b"]))])]
    checks = check_gates(PROD, digests={"orders": SHA["b"]}, artifact="1.1.0", required_records=records, now=T0)
    assert [c.ok for c in checks] == [False]


def test_an_unreadable_required_ledger_fails_the_gate():
    checks = check_gates(PROD, digests=DIGESTS_110, artifact="1.1.0", required_records=None, now=T0)
    assert checks == [GateCheck("requires", False, "the ledger of staging could not be read")]


def test_environments_without_gates_have_nothing_to_check():
    staging_env = Environment(name="staging", account="222222222222", region="us-east-1")
    assert check_gates(staging_env, digests=DIGESTS_110, artifact="1.1.0", required_records=None, now=T0) == []


def test_requires_without_soak_checks_only_the_digests():
    env = Environment(name="prod", account="333333333333", region="us-east-1", requires="staging")
    checks = check_gates(env, digests=DIGESTS_110, artifact="1.1.0",
                         required_records=staging(minutes_ago=1, now=T0), now=T0)
    assert [c.name for c in checks] == ["requires", "requires"]


def test_refusal_lists_every_failed_gate_and_force_needs_a_reason():
    checks = [GateCheck("requires", False, "staging has not run orders"), GateCheck("requires", True, "billing ok"),
              GateCheck("soak", False, "billing: 5m to go")]

    assert refusal_message(checks) == "gates refused: requires: staging has not run orders; soak: billing: 5m to go"
    with pytest.raises(GateRefused, match="requires: staging has not run orders; soak: billing: 5m to go"):
        enforce(checks, force=False, reason=None)
    with pytest.raises(UsageError, match="--force needs --reason"):
        enforce(checks, force=True, reason=None)
    with pytest.raises(UsageError):
        enforce([], force=True, reason="  ")
    enforce(checks, force=True, reason="INC-42 hotfix, approved by the release manager")
