"""Canary steps and alarms: weights on the alias while the fake clock runs, and undoing on ALARM."""

from __future__ import annotations

import pytest
from promote_helpers import FUNCTIONS

from builder.errors import GateRefused
from builder.promote.executor import CanaryAborted


@pytest.fixture
def canary_shop(shop):
    shop.watch_canary()
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")  # new aliases: nothing to split, they are created directly
    shop.set_code("orders", "b")
    shop.publish("1.1.0")
    return shop


def weights(shop, fn):
    alias = shop.alias("staging", fn)
    return alias["FunctionVersion"], (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}


def test_canary_steps_shift_traffic_by_weights_while_the_alarms_stay_quiet(canary_shop):
    shop = canary_shop
    seen = []
    shop.clock.on_sleep.append(lambda clock: seen.append(weights(shop, "orders")))

    result = shop.promote("1.1.0", "staging")

    assert result.status == "succeeded"
    assert seen[0] == ("1", {"2": 0.1})
    assert ("1", {"2": 0.5}) in seen
    assert seen.index(("1", {"2": 0.5})) > seen.index(("1", {"2": 0.1}))
    assert sum(shop.clock.slept) == 2 * 300  # two steps of five minutes, on the fake clock
    assert weights(shop, "orders") == ("2", {})
    assert weights(shop, "billing") == ("1", {})  # unchanged functions are not touched


def test_an_alarm_during_a_canary_step_moves_the_alias_back_and_the_ledger_says_why(canary_shop):
    shop = canary_shop
    cloudwatch = shop.aws.client("staging", "cloudwatch")

    def fire(clock):
        if len(clock.slept) == 1:
            cloudwatch.set_alarm_state(AlarmName="shop-errors", StateValue="ALARM", StateReason="5xx spike")

    shop.clock.on_sleep.append(fire)

    with pytest.raises(CanaryAborted) as caught:
        shop.promote("1.1.0", "staging")

    assert caught.value.exit_code == GateRefused.exit_code
    assert "shop-errors" in caught.value.message and "10%" in caught.value.message
    assert caught.value.reverted == ("orders",)
    assert weights(shop, "orders") == ("1", {})
    record = shop.ledger("staging")[-1]
    assert record["status"] == "reverted"
    assert "alarm shop-errors is in ALARM" in record["reason"] and "5xx spike" in record["reason"]


def test_an_alarm_already_in_alarm_refuses_the_promotion_before_anything_moves(canary_shop):
    shop = canary_shop
    shop.aws.client("staging", "cloudwatch").set_alarm_state(AlarmName="shop-errors", StateValue="ALARM",
                                                             StateReason="already burning")

    with pytest.raises(GateRefused) as caught:
        shop.promote("1.1.0", "staging")

    assert "alarms: alarm shop-errors is in ALARM" in caught.value.message
    assert {fn: weights(shop, fn) for fn in FUNCTIONS} == {fn: ("1", {}) for fn in FUNCTIONS}
    assert shop.ledger("staging")[-1]["status"] == "refused"


def test_an_alarm_that_does_not_exist_fails_its_gate(canary_shop):
    shop = canary_shop
    shop.aws.client("staging", "cloudwatch").delete_alarms(AlarmNames=["shop-errors"])

    with pytest.raises(GateRefused) as caught:
        shop.promote("1.1.0", "staging")
    assert "does not exist" in caught.value.message
