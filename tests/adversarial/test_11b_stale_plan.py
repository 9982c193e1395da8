"""Issue 11, Build item 3: every alias move is conditional on the state the plan read.

Against the moto accounts. A test hook (`before_apply`, called after the plan
was made and the environment's lock taken) or a canary step's sleep puts
another run's alias move between planning and applying, as an unrecorded
rollback (registry out of reach) or a hand would. The late run must abort
with RaceLost (exit 10), move nothing it did not plan from, put back only the
aliases it moved that are still where it put them, and close its ledger record
as failed: it can never undo the other run's move.

moto 5.2.5 returns no alias RevisionId, so what catches the race here is the
re-read (`get_alias`) before every move; on real AWS the `RevisionId` passed
with `UpdateAlias` is Lambda's own precondition too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "promote"))

from promote_helpers import Shop, new_shop

from builder.promote.executor import ApplyFailed
from builder.promote.factory import create_promoter
from builder.promote.promoter import PromoteRequest

RACE_LOST = 10
CANARY = 'canary = { steps = [10, 50], interval = "5m" }\n'


@pytest.fixture
def shop(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    return new_shop(aws, tmp_path)


def alias(shop: Shop, fn: str) -> tuple[str, dict]:
    found = shop.alias("staging", fn)
    return found["FunctionVersion"], (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}


def move_by_other_run(shop: Shop, fn: str, version: str, weights: dict | None = None) -> None:
    shop.lam("staging").update_alias(FunctionName=f"shop-{fn}", Name="live", FunctionVersion=version,
                                     RoutingConfig={"AdditionalVersionWeights": weights or {}})


def late_promote(shop: Shop, version: str, before_apply=None):
    project = shop.project()
    promoter = create_promoter(project, shop.access("staging"), shop.store(), clock=shop.clock,
                               before_apply=before_apply)
    return promoter.promote(PromoteRequest(version))


def three_releases_live_on_the_last(shop: Shop) -> dict[str, str]:
    """1.0.0, 1.2.0 and 1.1.0 promoted in that order: orders' versions by release."""
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    v100 = alias(shop, "orders")[0]
    shop.set_code("orders", "c")
    shop.publish("1.2.0")
    shop.promote("1.2.0", "staging")
    v120 = alias(shop, "orders")[0]
    shop.set_code("orders", "b")
    shop.publish("1.1.0")
    shop.promote("1.1.0", "staging")
    v110 = alias(shop, "orders")[0]
    assert len({v100, v120, v110}) == 3
    return {"1.0.0": v100, "1.2.0": v120, "1.1.0": v110}


def test_a_move_between_planning_and_applying_aborts_the_late_run_with_exit_10(shop: Shop) -> None:
    versions = three_releases_live_on_the_last(shop)
    others = {fn: alias(shop, fn) for fn in ("billing", "notify")}
    records = len(shop.ledger("staging"))
    # The late run plans "orders: 1.1.0's version -> 1.0.0's"; meanwhile another run puts 1.2.0 live.
    hook_calls = []

    def other_run(plan) -> None:
        hook_calls.append(plan.event)
        move_by_other_run(shop, "orders", versions["1.2.0"])

    with pytest.raises(ApplyFailed) as raised:
        late_promote(shop, "1.0.0", before_apply=other_run)

    assert hook_calls == ["promote"]
    assert raised.value.exit_code == RACE_LOST, raised.value.message
    assert "moved it meanwhile" in raised.value.message and "shop-orders" in raised.value.message
    assert alias(shop, "orders") == (versions["1.2.0"], {})  # the other run's release stays live
    assert {fn: alias(shop, fn) for fn in ("billing", "notify")} == others
    ledger = shop.ledger("staging")
    assert len(ledger) == records + 2  # started, then closed as failed: the lock is free again
    assert ledger[-1]["status"] == "failed" and ledger[-1]["to_version"] == "1.0.0"

    assert late_promote(shop, "1.0.0").status == "succeeded"  # planned again from what is there, it goes through
    assert alias(shop, "orders") == (versions["1.0.0"], {})


def test_a_routing_weight_added_meanwhile_is_a_stale_plan_too(shop: Shop) -> None:
    versions = three_releases_live_on_the_last(shop)

    def other_run(plan) -> None:
        move_by_other_run(shop, "orders", versions["1.1.0"], {versions["1.2.0"]: 0.5})

    with pytest.raises(ApplyFailed) as raised:
        late_promote(shop, "1.0.0", before_apply=other_run)

    assert raised.value.exit_code == RACE_LOST
    assert alias(shop, "orders") == (versions["1.1.0"], {versions["1.2.0"]: 0.5})


def test_a_move_during_a_canary_step_is_not_undone_by_the_late_runs_revert(shop: Shop) -> None:
    shop.staging_extra = CANARY
    shop.write_config()
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    start = {fn: alias(shop, fn)[0] for fn in ("orders", "billing")}
    shop.set_code("orders", "b")
    shop.set_code("billing", "b")
    shop.publish("1.1.0")
    # The other run: an earlier-planned promote of 1.1.0 finishing for orders while this run's canary waits.
    moved = []

    def other_run(clock) -> None:
        if not moved:
            new = alias(shop, "orders")[1]
            assert new, "the canary's first step should send traffic to the new version"
            target = next(iter(new))
            move_by_other_run(shop, "orders", target)
            moved.append(target)

    shop.clock.on_sleep.append(other_run)
    with pytest.raises(ApplyFailed) as raised:
        late_promote(shop, "1.1.0")

    assert raised.value.exit_code == RACE_LOST, raised.value.message
    assert alias(shop, "orders") == (moved[0], {})  # left where the other run put it, not moved back
    assert alias(shop, "billing") == (start["billing"], {})  # this run's own move is put back
    assert any("orders" in s and "left as it is" in s for s in raised.value.stuck)
    assert shop.ledger("staging")[-1]["status"] == "failed"
