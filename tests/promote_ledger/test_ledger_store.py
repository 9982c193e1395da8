"""The ledger in S3 (moto): conditional appends, one run at a time, leases, no gaps, nothing lost."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from ledger_helpers import ALICE, BOB, SHA, Clock, HookedStore, change, once

from builder.errors import RaceLost, UsageError, VerificationFailed
from builder.promote.ledger import Ledger
from builder.promote.records import GateResult, LedgerRecord, format_instant
from builder.registry.release import canonical_json

ORDERS = change("orders", ("4", "1.0.0", SHA["a"]), ("5", "1.1.0", SHA["b"]))


def open_run(ledger: Ledger, actor: str = ALICE, **kwargs) -> LedgerRecord:
    params = {"event": "promote", "actor": actor, "from_version": "1.0.0", "to_version": "1.1.0", "changes": [ORDERS]}
    params.update(kwargs)
    return ledger.open(**params)


def seqs_and_statuses(ledger: Ledger) -> list[tuple[int, str]]:
    return [(r.seq, r.status) for r in ledger.records()]


def test_a_run_opens_and_closes_at_consecutive_sequences(store):
    clock = Clock()
    ledger = Ledger(store, "shop", "staging", clock=clock)
    assert ledger.records() == [] and ledger.head() is None

    opened = open_run(ledger)
    clock.advance(minutes=2)
    closed = ledger.close(opened, status="succeeded")

    assert (opened.seq, opened.status, opened.lease_until) == (1, "started", "2026-11-26T20:00:00Z")
    assert (closed.seq, closed.status, closed.opened, closed.at) == (2, "succeeded", 1, "2026-11-26T19:32:00.000000Z")
    assert closed.changes == (ORDERS,) and closed.actor == ALICE
    assert ledger.records() == [opened, closed]
    assert ledger.head() == closed
    keys = [info.key for info in store.list("relay/shop/ledger/")]
    assert keys == ["relay/shop/ledger/staging/0000000001.json", "relay/shop/ledger/staging/0000000002.json"]
    assert Ledger(store, "shop", "prod").records() == []  # environments keep separate ledgers


def test_an_open_run_with_a_live_lease_blocks_another(store):
    clock = Clock()
    ledger = Ledger(store, "shop", "staging", clock=clock)
    open_run(ledger, ALICE)
    clock.advance(minutes=10)

    with pytest.raises(RaceLost) as caught:
        open_run(ledger, BOB, to_version="1.2.0")

    message = caught.value.message
    assert caught.value.exit_code == 10
    assert ALICE in message and "since 2026-11-26T19:30:00.000000Z" in message and "1.0.0 -> 1.1.0" in message
    assert "in 20m" in message  # when the holder is presumed dead
    assert seqs_and_statuses(ledger) == [(1, "started")]


def test_an_open_run_whose_lease_expired_is_superseded(store):
    clock = Clock()
    ledger = Ledger(store, "shop", "staging", clock=clock)
    dead = open_run(ledger, ALICE, lease=dt.timedelta(minutes=5))
    clock.advance(minutes=5)

    taken = open_run(ledger, BOB)

    assert (taken.seq, taken.supersedes, taken.actor) == (2, dead.seq, BOB)
    assert ledger.running() == taken


def test_a_closed_run_does_not_block_and_refusals_in_between_do_not_either(store):
    ledger = Ledger(store, "shop", "staging", clock=Clock())
    first = open_run(ledger)
    ledger.refuse(event="promote", actor=BOB, from_version="1.0.0", to_version="1.2.0", reason="gates refused")
    ledger.close(first, status="failed", reason="orders: update failed")

    second = open_run(ledger, BOB)

    assert seqs_and_statuses(ledger) == [(1, "started"), (2, "refused"), (3, "failed"), (4, "started")]
    assert second.supersedes is None


def test_a_refusal_while_a_run_is_open_is_recorded_and_the_run_still_holds(store):
    ledger = Ledger(store, "shop", "staging", clock=Clock())
    open_run(ledger)
    ledger.refuse(event="promote", actor=BOB, from_version=None, to_version="1.2.0", reason="verification failed")

    with pytest.raises(RaceLost):
        open_run(ledger, BOB)
    assert ledger.running().seq == 1


def test_two_runs_opening_at_once_one_wins_no_gap_no_duplicate(store):
    """Both read the ledger before either writes (a barrier at the store seam): the conditional put decides."""
    barrier = threading.Barrier(2, timeout=30)
    hooked = HookedStore(store)
    hooked.after_list = lambda prefix: barrier.wait()
    results: dict[str, object] = {}

    def run(actor: str) -> None:
        try:
            results[actor] = open_run(Ledger(hooked, "shop", "staging", clock=Clock()), actor)
        except RaceLost as exc:
            results[actor] = exc

    threads = [threading.Thread(target=run, args=(actor,)) for actor in (ALICE, BOB)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    winners = [r for r in results.values() if isinstance(r, LedgerRecord)]
    losers = [r for r in results.values() if isinstance(r, RaceLost)]
    assert len(winners) == 1 and len(losers) == 1
    assert "another run took the environment first" in losers[0].message
    assert hooked.creates.count("relay/shop/ledger/staging/0000000001.json") == 2  # both tried seq 1
    assert seqs_and_statuses(Ledger(store, "shop", "staging")) == [(1, "started")]
    assert Ledger(store, "shop", "staging").read(1) == winners[0]


def test_many_racing_runs_leave_a_ledger_without_gaps_or_duplicates(store):
    """Eight promoters, each closing what it opens: every record lands at the next sequence."""
    start = threading.Event()
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        ledger = Ledger(store, "shop", "staging")
        start.wait()
        for _ in range(3):
            try:
                opened = open_run(ledger, f"arn:aws:sts::222222222222:assumed-role/relay-deployer/r{index}")
            except RaceLost:
                ledger.refuse(event="promote", actor=f"r{index}", from_version=None, to_version="1.1.0", reason="busy")
                with lock:
                    outcomes.append("lost")
                continue
            ledger.close(opened, status="succeeded")
            with lock:
                outcomes.append("won")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(timeout=120)

    records = Ledger(store, "shop", "staging").records()
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    assert len(records) == 2 * outcomes.count("won") + outcomes.count("lost")
    started = [r for r in records if r.status == "started"]
    closed = [r.opened for r in records if r.status == "succeeded"]
    assert sorted(closed) == [r.seq for r in started]  # every run closed exactly once
    # Runs never overlapped: each started record is closed before the next one starts.
    holder = None
    for r in records:
        if r.status == "started":
            assert holder is None, f"seq {r.seq} started while seq {holder} held the environment"
            holder = r.seq
        elif r.status == "succeeded":
            assert r.opened == holder
            holder = None
    assert outcomes.count("won") >= 1


def test_close_retries_past_a_refusal_appended_meanwhile(store):
    hooked = HookedStore(store)
    ledger = Ledger(hooked, "shop", "staging", clock=Clock())
    opened = open_run(ledger)
    other = Ledger(store, "shop", "staging", clock=Clock())
    # Between the close's listing and its put, another run is refused and takes sequence 2.
    hooked.after_list = once(lambda prefix: other.refuse(event="promote", actor=BOB, from_version=None,
                                                         to_version="1.2.0", reason="gates refused"))

    closed = ledger.close(opened, status="succeeded")

    assert closed.seq == 3 and closed.opened == 1
    assert hooked.creates[-2:] == ["relay/shop/ledger/staging/0000000002.json",
                                   "relay/shop/ledger/staging/0000000003.json"]
    assert seqs_and_statuses(ledger) == [(1, "started"), (2, "refused"), (3, "succeeded")]


def test_open_retries_when_only_a_refusal_took_its_sequence(store):
    hooked = HookedStore(store)
    ledger = Ledger(hooked, "shop", "staging", clock=Clock())
    other = Ledger(store, "shop", "staging", clock=Clock())
    hooked.before_create = once(lambda key: other.refuse(event="promote", actor=BOB, from_version=None,
                                                         to_version="1.2.0", reason="gates refused"))

    opened = open_run(ledger)

    assert opened.seq == 2
    assert seqs_and_statuses(ledger) == [(1, "refused"), (2, "started")]


def test_open_loses_when_another_run_takes_its_sequence(store):
    hooked = HookedStore(store)
    ledger = Ledger(hooked, "shop", "staging", clock=Clock())
    other = Ledger(store, "shop", "staging", clock=Clock())
    hooked.before_create = once(lambda key: open_run(other, BOB, to_version="1.2.0"))

    with pytest.raises(RaceLost) as caught:
        open_run(ledger)

    assert f"seq 1, promote 1.0.0 -> 1.2.0 by {BOB}" in caught.value.message
    assert seqs_and_statuses(ledger) == [(1, "started")]


def test_closing_twice_after_a_lost_reply_records_the_outcome_once(store):
    clock = Clock()
    ledger = Ledger(store, "shop", "staging", clock=clock)
    opened = open_run(ledger)
    # The put went through but its reply was lost; the retry finds this run's record there (same run id).
    same = LedgerRecord(seq=2, app="shop", env="staging", event="promote", status="succeeded", actor=ALICE,
                        at=format_instant(clock()), from_version="1.0.0", to_version="1.1.0", changes=(ORDERS,),
                        opened=1, run_id=opened.run_id, prev=ledger.read(1).digest)
    store.create(ledger.key(2), canonical_json(same.to_json()))

    closed = ledger.close(opened, status="succeeded")

    assert closed == same
    assert seqs_and_statuses(ledger) == [(1, "started"), (2, "succeeded")]


def test_forced_runs_need_a_reason_and_keep_it_on_the_terminal_record(store):
    ledger = Ledger(store, "shop", "prod", clock=Clock())
    with pytest.raises(UsageError, match="^--force needs --reason TEXT$"):
        open_run(ledger, forced=True, reason=" ")

    opened = open_run(ledger, forced=True, reason="INC-42: staging is down, hotfix approved")
    closed = ledger.close(opened, status="succeeded")

    assert opened.forced and closed.forced
    assert closed.reason == "INC-42: staging is down, hotfix approved"


def test_close_takes_only_terminal_statuses(store):
    ledger = Ledger(store, "shop", "staging", clock=Clock())
    opened = open_run(ledger)
    with pytest.raises(ValueError):
        ledger.close(opened, status="refused")


def test_a_malformed_record_is_reported_not_trusted(store):
    ledger = Ledger(store, "shop", "staging", clock=Clock())
    open_run(ledger)
    store.create(ledger.key(2), b'{"seq": 2}')

    with pytest.raises(VerificationFailed) as caught:
        ledger.records()
    assert "0000000002.json: corrupt (not a ledger record" in caught.value.message

    store.create(ledger.key(3), canonical_json({**ledger.read(1).to_json(), "seq": 7}))
    with pytest.raises(VerificationFailed, match="its key says shop/staging seq 3"):
        ledger.read(3)


def test_closing_a_run_with_another_outcome_than_recorded_is_refused(store):
    ledger = Ledger(store, "shop", "staging", clock=Clock())
    opened = open_run(ledger)
    ledger.close(opened, status="failed", reason="orders: boom")

    with pytest.raises(RaceLost, match="already closed as 'failed' at seq 2"):
        ledger.close(opened, status="succeeded")
    assert len(ledger.records()) == 2


def test_a_refusal_and_a_forced_run_keep_the_gate_results_that_decided_them(store):
    ledger = Ledger(store, "shop", "prod", clock=Clock())
    soak = GateResult("soak", False, "orders has been live in staging for 20m, soak is 1h: 40m to go", "orders",
                      {"env": "staging", "elapsed_seconds": 1200, "soak_seconds": 3600})

    ledger.refuse(event="promote", actor=BOB, from_version=None, to_version="1.1.0",
                  reason="gate refused: soak: orders ...", gates=[soak])
    forced = open_run(ledger, forced=True, reason="INC-42: hotfix approved", gates=[soak])

    refused, started = ledger.records()
    assert refused.gates == (soak,) and started.gates == (soak,)
    assert started.forced and started.seq == forced.seq
