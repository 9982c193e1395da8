"""Gates in one shape: requires and soak from the ledger (pure), alarms from CloudWatch, refusals and --force."""

from __future__ import annotations

import datetime as dt

import pytest
from ledger_helpers import SHA, T0, change, record

from builder.aws.cloudwatch import AlarmState
from builder.config import Environment
from builder.errors import GateRefused, UsageError
from builder.promote.gates import (
    AlarmsGate,
    GateContext,
    Override,
    RequiresGate,
    SoakGate,
    evaluate,
    gates_for,
    refusal_message,
)
from builder.promote.records import GateResult

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


def check_gates(env: Environment, *, digests, artifact, required_records, now) -> list[GateResult]:
    """The environment's ledger gates (no alarms: those need CloudWatch), evaluated."""
    return list(evaluate(gates_for(env), GateContext(digests, artifact, now, required_records)))


def enforce(results, *, force: bool, reason: str | None) -> None:
    Override(force, reason).enforce(results)


def by_function(checks: list[GateResult]) -> dict[tuple[str, str | None], GateResult]:
    return {(c.name, c.subject): c for c in checks}


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

    assert [(c.name, c.ok, c.subject, c.detail) for c in checks] == [
        ("requires", False, "orders",
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
    assert [(c.name, c.ok, c.detail) for c in checks] == [("requires", False, "the ledger of staging could not be read")]


def test_environments_without_gates_have_nothing_to_check():
    staging_env = Environment(name="staging", account="222222222222", region="us-east-1")
    assert check_gates(staging_env, digests=DIGESTS_110, artifact="1.1.0", required_records=None, now=T0) == []


def test_requires_without_soak_checks_only_the_digests():
    env = Environment(name="prod", account="333333333333", region="us-east-1", requires="staging")
    checks = check_gates(env, digests=DIGESTS_110, artifact="1.1.0",
                         required_records=staging(minutes_ago=1, now=T0), now=T0)
    assert [c.name for c in checks] == ["requires", "requires"]


def test_refusal_lists_every_failed_gate_and_force_needs_a_reason():
    checks = [GateResult("requires", False, "staging has not run orders"), GateResult("requires", True, "billing ok"),
              GateResult("soak", False, "billing: 5m to go")]

    assert refusal_message(checks) == "gates refused: requires: staging has not run orders; soak: billing: 5m to go"
    with pytest.raises(GateRefused, match="requires: staging has not run orders; soak: billing: 5m to go"):
        enforce(checks, force=False, reason=None)
    with pytest.raises(UsageError, match="--force needs --reason"):
        enforce(checks, force=True, reason=None)
    with pytest.raises(UsageError):
        enforce([], force=True, reason="  ")
    enforce(checks, force=True, reason="INC-42 hotfix, approved by the release manager")


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_force_without_a_reason_is_one_usage_error_with_one_message(reason):
    with pytest.raises(UsageError) as caught:
        Override(force=True, reason=reason)
    assert caught.value.message == "--force needs --reason TEXT"
    assert "recorded in the ledger" in caught.value.hint
    assert caught.value.exit_code == UsageError.exit_code


def test_an_override_says_whether_it_overrode_anything():
    refused = [GateResult("soak", False, "orders: 5m to go", "orders")]
    passed = [GateResult("soak", True, "orders: 2h", "orders")]

    assert Override(True, "INC-42").overrides(refused)
    assert not Override(True, "INC-42").overrides(passed)  # nothing refused: the run is not forced
    assert not Override().overrides(refused)
    Override().enforce(passed)


def test_results_carry_the_evidence_that_decided_them_in_one_json_shape():
    records = staging(minutes_ago=600, now=T0)
    checks = check_gates(PROD, digests={"orders": SHA["c"], "billing": SHA["d"]}, artifact="1.2.0",
                         required_records=records, now=T0)

    refused = by_function(checks)["requires", "orders"].to_json()
    assert refused == {
        "name": "requires", "ok": False, "subject": "orders",
        "detail": "staging has not run orders sha256 cccccccccccc.. (1.2.0): it runs sha256 bbbbbbbbbbbb.. (1.1.0)",
        "evidence": {"env": "staging", "digest": SHA["c"], "live_digest": SHA["b"], "live_artifact": "1.1.0",
                     "live_since": "2026-11-26T09:30:00Z"},
    }
    soak = by_function(checks)["soak", "billing"].to_json()
    assert soak["evidence"]["soak_seconds"] == 3600 and soak["evidence"]["elapsed_seconds"] >= 3 * 86400
    assert all(GateResult.from_json(c.to_json()) == c for c in checks)


class FakeCloudWatch:
    """The CloudWatch seam's one method, answering from a dict (None: the alarm does not exist)."""

    def __init__(self, states: dict[str, AlarmState | None]) -> None:
        self.states = states
        self.calls = 0

    def alarm_states(self, names):
        self.calls += 1
        return {name: self.states.get(name) for name in names}


def test_the_alarms_gate_has_the_same_shape_and_joins_the_environments_gates():
    cloudwatch = FakeCloudWatch({"shop-errors": AlarmState("shop-errors", "ALARM", "5xx spike"),
                                 "shop-latency": AlarmState("shop-latency", "OK")})
    env = Environment(name="prod", account="333333333333", region="us-east-1", requires="staging", soak=3600,
                      alarms=("shop-errors", "shop-latency", "shop-gone"))
    alarms = AlarmsGate(cloudwatch, env.alarms)
    gates = gates_for(env, alarms=alarms)

    assert [type(g) for g in gates] == [RequiresGate, SoakGate, AlarmsGate]
    results = evaluate(gates, GateContext(DIGESTS_110, "1.1.0", T0, staging(minutes_ago=61, now=T0)))
    verdicts = {(r.name, r.subject): (r.ok, r.detail) for r in results if r.name == "alarms"}
    assert verdicts == {
        ("alarms", "shop-errors"): (False, "alarm shop-errors is in ALARM: 5xx spike"),
        ("alarms", "shop-latency"): (True, "alarm shop-latency is OK"),
        ("alarms", "shop-gone"): (False, "alarm shop-gone does not exist in the environment's account"),
    }
    assert refusal_message(results) == ("gates refused: alarms: alarm shop-errors is in ALARM: 5xx spike; "
                                         "alarms: alarm shop-gone does not exist in the environment's account")
    with pytest.raises(GateRefused, match="shop-gone"):
        Override().enforce(results)
    # The canary watches the same gate between its steps.
    assert alarms.firing() == AlarmState("shop-errors", "ALARM", "5xx spike")


def test_no_alarms_configured_means_no_alarms_gate_and_no_calls():
    cloudwatch = FakeCloudWatch({})
    env = Environment(name="staging", account="222222222222", region="us-east-1")
    assert gates_for(env, alarms=AlarmsGate(cloudwatch, env.alarms)) == ()
    assert AlarmsGate(cloudwatch, ()).firing() is None and cloudwatch.calls == 0
