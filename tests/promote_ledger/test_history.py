"""`relay history`: runs paired with their outcome, refusals, newest first; against the moto registry."""

from __future__ import annotations

import datetime as dt
import json

from ledger_helpers import ALICE, BOB, SHA, T0, Clock, change, record

from builder.commands.render.history import history_summary
from builder.promote.history import pair_records, read_history
from builder.promote.ledger import Ledger

NONE = (None, None, None)
O1, O2 = ("1", "1.0.0", SHA["a"]), ("2", "1.1.0", SHA["b"])


def fill(ledger: Ledger, clock: Clock) -> None:
    """promote 1.0.0, a refusal, promote 1.1.0 (forced), rollback."""
    first = ledger.open(event="promote", actor=ALICE, from_version=None, to_version="1.0.0",
                        changes=[change("orders", NONE, O1)])
    clock.advance(minutes=3)
    ledger.close(first, status="succeeded")
    clock.advance(hours=1)
    ledger.refuse(event="promote", actor=BOB, from_version="1.0.0", to_version="1.1.0",
                  reason="gates refused: soak: orders 40m to go")
    clock.advance(minutes=5)
    second = ledger.open(event="promote", actor=BOB, from_version="1.0.0", to_version="1.1.0",
                         changes=[change("orders", O1, O2)], forced=True, reason="INC-42 hotfix")
    clock.advance(minutes=1)
    ledger.close(second, status="succeeded")
    clock.advance(hours=2)
    third = ledger.open(event="rollback", actor=ALICE, from_version="1.1.0", to_version="1.0.0",
                        changes=[change("orders", O2, O1)])
    clock.advance(seconds=20)
    ledger.close(third, status="succeeded", reason="errors after 1.1.0")


def test_history_pairs_runs_newest_first(store):
    clock = Clock()
    ledger = Ledger(store, "shop", "prod", clock=clock)
    fill(ledger, clock)

    history = read_history(ledger, limit=10)

    assert [(e.first.seq, e.last.seq if e.last else None, e.first.event, e.state) for e in history.entries] == [
        (6, 7, "rollback", "succeeded"), (4, 5, "promote", "succeeded"), (3, None, "promote", "refused"),
        (1, 2, "promote", "succeeded")]
    assert not history.truncated
    text = history_summary(history)
    lines = text.splitlines()
    assert lines[2].startswith("6..7") and "rollback" in lines[2] and "1.1.0 -> 1.0.0" in lines[2]
    assert "succeeded after 20s" in lines[2] and "errors after 1.1.0" in lines[2]
    assert "FORCED" in lines[3] and "INC-42 hotfix" in lines[3] and "assumed-role/relay-deployer/bob" in lines[3]
    assert "refused" in lines[4] and "40m to go" in lines[4]


def test_history_limit_reads_only_the_newest_entries(store):
    clock = Clock()
    ledger = Ledger(store, "shop", "prod", clock=clock)
    fill(ledger, clock)

    history = read_history(ledger, limit=2)

    assert [e.first.seq for e in history.entries] == [6, 4]
    assert history.truncated


def test_a_run_in_progress_and_a_dead_one():
    now = T0 + dt.timedelta(minutes=10)
    records = [record(1, status="started", at=T0 - dt.timedelta(hours=2)),
               record(2, status="started", at=T0, supersedes=1)]

    entries = pair_records(records, now=now)

    # A dead run taken over is "superseded" (by the run that took over), never "running" forever.
    assert [(e.first.seq, e.state, e.superseded_by) for e in entries] == [(2, "running", None), (1, "superseded", 2)]

    # With nobody taking over, a run whose lease ran out shows as "died".
    later = pair_records(records, now=T0 + dt.timedelta(hours=2))
    assert [(e.first.seq, e.state) for e in later] == [(2, "died"), (1, "superseded")]


def test_relay_history_command(workspace):
    clock = Clock()
    fill(Ledger(workspace.store(), "shop", "prod", clock=clock), clock)

    shown = workspace.relay("history", "--env", "prod")
    as_json = workspace.relay("history", "--env", "prod", "--limit", "1", "--json")
    empty = workspace.relay("history", "--env", "staging")
    unknown = workspace.relay("history", "--env", "qa")

    assert shown.returncode == 0, shown.stderr
    assert [line.split()[0] for line in shown.stdout.splitlines()[2:]] == ["6..7", "4..5", "3", "1..2"]
    doc = json.loads(as_json.stdout)
    assert doc["truncated"] and len(doc["entries"]) == 1
    entry = doc["entries"][0]
    assert (entry["event"], entry["state"], entry["from_version"], entry["to_version"]) == (
        "rollback", "succeeded", "1.1.0", "1.0.0")
    assert entry["changes"][0]["to_version"] == "1"
    assert empty.returncode == 0 and "No ledger records for shop in staging" in empty.stdout
    assert unknown.returncode == 12 and "no environment named 'qa'" in unknown.stderr
