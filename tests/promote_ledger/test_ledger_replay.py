"""live_state and previous_state over hand-made ledgers (pure)."""

from __future__ import annotations

import datetime as dt
import random

from ledger_helpers import SHA, T0, change, record

from builder.promote.ledger_replay import LiveFunction, live_state, previous_state

NONE = (None, None, None)
O1, O2, O3 = ("1", "1.0.0", SHA["a"]), ("2", "1.1.0", SHA["b"]), ("3", "1.2.0", SHA["c"])
B1 = ("1", "1.0.0", SHA["d"])
B1_AT_110 = ("1", "1.1.0", SHA["d"])  # billing unchanged in 1.1.0: same bytes, same Lambda version


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def run(seq: int, minutes: int, *changes, event: str = "promote", status: str = "succeeded", versions=(None, None)):
    """A run's two records: started at seq, terminal at seq + 1."""
    return [
        record(seq, event=event, status="started", at=at(minutes), changes=changes,
               from_version=versions[0], to_version=versions[1]),
        record(seq + 1, event=event, status=status, at=at(minutes + 1), changes=changes, opened=seq,
               from_version=versions[0], to_version=versions[1]),
    ]


def ledger_p_p_p():
    """Promote 1.0.0 (creates both aliases), 1.1.0 (orders only moves), 1.2.0 (orders)."""
    return [
        *run(1, 0, change("orders", NONE, O1), change("billing", NONE, B1), versions=(None, "1.0.0")),
        *run(3, 10, change("orders", O1, O2), change("billing", B1, B1_AT_110), versions=("1.0.0", "1.1.0")),
        *run(5, 20, change("orders", O2, O3), versions=("1.1.0", "1.2.0")),
    ]


def test_live_state_replays_succeeded_runs_only():
    records = [
        *run(1, 0, change("orders", NONE, O1), change("billing", NONE, B1)),
        *run(3, 10, change("orders", O1, O2), status="failed"),
        *run(5, 20, change("orders", O1, O3), status="reverted"),
        record(7, status="refused", at=at(30), changes=[change("orders", O1, O3)]),
        record(8, status="started", at=at(40), changes=[change("orders", O1, O2)]),  # still running
    ]

    live = live_state(records)

    assert live == {
        "orders": LiveFunction("orders", "1.0.0", SHA["a"], "1", "2026-11-26T19:31:00Z"),
        "billing": LiveFunction("billing", "1.0.0", SHA["d"], "1", "2026-11-26T19:31:00Z"),
    }


def test_live_state_keeps_since_while_the_same_bytes_stay_live():
    live = live_state(ledger_p_p_p())

    assert live["orders"] == LiveFunction("orders", "1.2.0", SHA["c"], "3", "2026-11-26T19:51:00Z")
    # billing rode along in 1.1.0 with the same bytes: it has been live since 1.0.0's promotion.
    assert live["billing"] == LiveFunction("billing", "1.1.0", SHA["d"], "1", "2026-11-26T19:31:00Z")


def test_live_state_follows_rollbacks_and_ignores_record_order():
    records = [*ledger_p_p_p(), *run(7, 30, change("orders", O3, O2), event="rollback")]
    random.Random(4).shuffle(records)

    assert live_state(records)["orders"] == LiveFunction("orders", "1.1.0", SHA["b"], "2", "2026-11-26T20:01:00Z")


def test_previous_state_walks_back_one_promotion_per_rollback():
    records = ledger_p_p_p()
    assert previous_state(records, function="orders") == change("orders", O2, O3)

    records += run(7, 30, change("orders", O3, O2), event="rollback")  # promote, promote, promote, rollback
    assert previous_state(records, function="orders") == change("orders", O1, O2)

    records += run(9, 40, change("orders", O2, O1), event="rollback")  # ..., rollback, rollback
    # Back at 1.0.0, whose promotion created the alias: nothing earlier to go back to.
    assert previous_state(records, function="orders") is None


def test_rolling_back_a_rollback_is_not_previous():
    records = [*ledger_p_p_p(), *run(7, 30, change("orders", O3, O2), event="rollback")]
    # The naive answer ("undo the latest change") would go forward to 1.2.0 again.
    assert previous_state(records, function="orders").from_artifact == "1.0.0"


def test_previous_state_skips_functions_a_promotion_left_alone():
    records = ledger_p_p_p()
    # billing was created by 1.0.0 and never moved since: nothing to roll back to.
    assert previous_state(records, function="billing") is None
    assert previous_state(records, function="unknown") is None


def test_an_explicit_rollback_to_an_older_release_unwinds_everything_above_it():
    records = [*ledger_p_p_p(), *run(7, 30, change("orders", O3, O1), event="rollback")]  # --to 1.0.0
    assert previous_state(records, function="orders") is None
    assert live_state(records)["orders"].artifact == "1.0.0"


def test_a_rollback_to_a_version_no_promotion_made_live_counts_as_a_move():
    records = [
        *run(1, 0, change("orders", NONE, O1)),
        *run(3, 10, change("orders", O1, O2)),
        *run(5, 20, change("orders", O2, O1), event="rollback"),
        *run(7, 30, change("orders", O1, O3), event="rollback"),  # --to 1.2.0, never promoted here
    ]
    assert previous_state(records, function="orders") == change("orders", O1, O3)


def test_failed_and_reverted_runs_do_not_count_for_rollback():
    records = [
        *run(1, 0, change("orders", NONE, O1)),
        *run(3, 10, change("orders", O1, O2)),
        *run(5, 20, change("orders", O2, O3), status="reverted"),
        *run(7, 30, change("orders", O2, O3), status="failed"),
    ]
    assert previous_state(records, function="orders") == change("orders", O1, O2)
