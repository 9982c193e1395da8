"""Issue 11, items 2 and 3: attacks on the ledger itself, written with boto3 as an attacker with S3 write rights.

Every record relay writes is signed (the release keys), chained (the sha256 of
the record before it) and carries its run's id. Each attack below edits,
deletes, appends, back-dates, replays or races records, and checks that
`relay history`'s reading flags it, that the gates fail closed on it, and that
the environment still takes the next run where it should.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
import threading
import uuid
from pathlib import Path

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "promote_ledger"))

from ledger_helpers import ALICE, BUCKET, SHA, Clock, change, registry_store

from builder.errors import RaceLost, VerificationFailed
from builder.promote.gates import GateContext, RequiresGate, SoakGate, evaluate, failed
from builder.promote.history import read_history
from builder.promote.ledger import Ledger, _signed_bytes
from builder.promote.ledger_replay import live_state
from builder.registry.release import canonical_json
from builder.registry.signing import Ed25519Signer, TrustedKeys

PREFIX = "relay/shop/ledger"
RELAY_KEY = Ed25519Signer(ed25519.Ed25519PrivateKey.generate())
ATTACKER_KEY = Ed25519Signer(ed25519.Ed25519PrivateKey.generate())
TRUSTED = TrustedKeys({RELAY_KEY.keyid: RELAY_KEY._key.public_key()})


@pytest.fixture
def store(aws):
    aws.client("registry", "s3").create_bucket(Bucket=BUCKET)
    return registry_store(aws)


@pytest.fixture
def s3(aws):
    """The attacker: plain boto3 puts and deletes under the ledger prefix (the deployer may write there)."""
    return aws.client("registry", "s3")


def ledger(store, env: str = "staging", clock: Clock | None = None) -> Ledger:
    return Ledger(store, "shop", env, clock=clock or Clock(), signer=RELAY_KEY, trusted=TRUSTED)


def promote(book: Ledger, to: str, digest: str, *, before: str | None = None, before_digest: str | None = None):
    """One succeeded promotion of `orders` to `to` (its bytes `digest`)."""
    fn = change("orders", (None if before is None else "1", before, before_digest), ("2" if before else "1", to, digest))
    opened = book.open(event="promote", actor=ALICE, from_version=before, to_version=to, changes=[fn])
    return book.close(opened, status="succeeded")


def raw(s3, env: str, seq: int) -> dict:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{env}/{seq:010d}.json")["Body"].read())


def put(s3, env: str, seq: int, doc: dict | bytes) -> None:
    body = doc if isinstance(doc, bytes) else canonical_json(doc)
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{env}/{seq:010d}.json", Body=body)


def prod_gates(book: Ledger, digest: str, now: dt.datetime):
    """The prod gates (`requires = "staging"`, `soak = "1h"`) against staging's ledger as relay reads it."""
    scan = book.scan()
    context = GateContext({"orders": digest}, "1.1.0", now, scan.accepted, required_problems=scan.problems,
                          required_repair=book.repair_hint)
    return evaluate((RequiresGate("staging"), SoakGate("staging", 3600)), context)


def checks(book: Ledger) -> dict[int, str]:
    return {r.seq: r.check for r in book.scan().records}


def test_relay_writes_signed_chained_records_with_a_run_id_and_microseconds(store, s3):
    book = ledger(store)
    promote(book, "1.0.0", SHA["a"])
    promote(book, "1.1.0", SHA["b"], before="1.0.0", before_digest=SHA["a"])

    records = book.records()
    assert checks(book) == {1: "ok", 2: "ok", 3: "ok", 4: "ok"}
    assert [r.prev for r in records] == [None, records[0].digest, records[1].digest, records[2].digest]
    assert records[0].run_id == records[1].run_id != records[2].run_id == records[3].run_id
    assert uuid.UUID(records[0].run_id).version == 4
    assert records[0].at.endswith(".000000Z")  # the fake clock has no fraction; the format keeps microseconds
    stored = raw(s3, "staging", 1)
    assert stored["signature"]["keyid"] == RELAY_KEY.keyid and stored["run_id"] == records[0].run_id


def test_an_appended_record_claiming_staging_ran_a_release_is_flagged_and_the_prod_gate_refuses(store, s3):
    clock = Clock()
    book = ledger(store, clock=clock)
    promote(book, "1.0.0", SHA["a"])
    clock.advance(hours=3)
    # The attacker appends two records (a started and a succeeded one) that say staging has run 1.1.0 for days.
    forged = raw(s3, "staging", 2)
    forged.pop("signature")
    started = {**raw(s3, "staging", 1), "seq": 3, "at": "2026-11-20T10:00:00Z", "to_version": "1.1.0"}
    started.pop("signature")
    put(s3, "staging", 3, started)
    put(s3, "staging", 4, {**forged, "seq": 4, "opened": 3, "at": "2026-11-20T10:05:00Z", "to_version": "1.1.0",
                           "changes": [{**forged["changes"][0], "to_digest": SHA["b"], "to_artifact": "1.1.0"}]})

    found = checks(book)
    assert found[3] == "unsigned" and found[4] == "unsigned"
    history = read_history(book, limit=None)
    assert not history.trusted and "seq 3: unsigned" in history.problems
    with pytest.raises(VerificationFailed) as caught:
        book.records()
    assert caught.value.exit_code == 8 and "--force --reason" in (caught.value.hint or "")

    results = prod_gates(book, SHA["b"], clock())
    refused = failed(results)
    assert {r.name for r in refused} == {"requires", "soak"}
    assert all("the ledger of staging cannot be trusted: seq 3: unsigned" in r.detail for r in refused)
    assert "relay rollback --env staging --force --reason" in refused[0].detail

    # Even what staging really ran does not pass while its ledger is untrusted: the gates fail closed.
    assert failed(prod_gates(book, SHA["a"], clock()))
    # The next run in staging still takes the lock (after the forged records), and a forced one repairs it.
    opened = book.open(event="rollback", actor=ALICE, from_version="1.1.0", to_version="1.0.0", changes=[],
                       forced=True, reason="INC-7: forged ledger records 3-4")
    book.close(opened, status="succeeded")
    assert opened.seq == 5 and opened.prev == book.scan().records[3].digest
    assert book.scan().problems == [] and "seq 3: unsigned" in book.scan().flagged
    assert not failed(prod_gates(book, SHA["a"], clock()))  # what staging actually ran (the forged 1.1.0 is not replayed)
    assert failed(prod_gates(book, SHA["b"], clock()))


def test_a_back_dated_record_signed_by_another_key_is_a_bad_signature(store, s3):
    clock = Clock()
    book = ledger(store, clock=clock)
    promote(book, "1.0.0", SHA["a"])
    # Back-dated 3 days and chained correctly, but signed with the attacker's own key.
    doc = {**raw(s3, "staging", 2), "seq": 3, "at": "2026-11-23T19:30:00.000000Z",
           "prev": book.scan().records[-1].digest, "run_id": str(uuid.uuid4())}
    doc.pop("signature")
    doc["signature"] = {"keyid": ATTACKER_KEY.keyid,
                        "sig": base64.b64encode(ATTACKER_KEY.sign(_signed_bytes(doc))).decode("ascii")}
    put(s3, "staging", 3, doc)

    assert checks(book)[3] == "bad signature"
    assert failed(prod_gates(book, SHA["a"], clock() + dt.timedelta(hours=2)))


def test_an_edited_record_is_edited_and_its_successor_no_longer_chains(store, s3):
    book = ledger(store)
    promote(book, "1.0.0", SHA["a"])
    promote(book, "1.1.0", SHA["b"], before="1.0.0", before_digest=SHA["a"])
    doc = raw(s3, "staging", 4)
    doc["changes"][0]["to_digest"] = SHA["c"]  # the signature stays, the bytes change
    put(s3, "staging", 4, doc)

    assert checks(book) == {1: "ok", 2: "ok", 3: "ok", 4: "edited"}
    assert "seq 4: edited" in read_history(book, limit=None).problems
    assert failed(prod_gates(book, SHA["c"], Clock()() + dt.timedelta(hours=2)))


def test_a_deleted_record_leaves_its_successor_without_a_predecessor(store, s3):
    book = ledger(store)
    promote(book, "1.0.0", SHA["a"])
    promote(book, "1.1.0", SHA["b"], before="1.0.0", before_digest=SHA["a"])
    s3.delete_object(Bucket=BUCKET, Key=f"{PREFIX}/staging/{3:010d}.json")  # the started record of 1.1.0

    assert checks(book) == {1: "ok", 2: "ok", 4: "missing predecessor"}
    with pytest.raises(VerificationFailed, match="seq 4: missing predecessor"):
        book.records()


def test_records_replayed_from_another_environment_or_another_position_are_out_of_chain(store, s3):
    prod = ledger(store, "prod")
    promote(prod, "1.1.0", SHA["b"])
    staging = ledger(store)
    promote(staging, "1.0.0", SHA["a"])

    # prod's validly signed "succeeded" record, copied byte for byte into staging's next sequence.
    body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/prod/{2:010d}.json")["Body"].read()
    put(s3, "staging", 3, body)
    scan = staging.scan()
    assert [(u.seq, u.check) for u in scan.unreadable] == [(3, "out of chain")]
    assert "its key says shop/staging seq 3" in scan.unreadable[0].detail
    assert failed(prod_gates(staging, SHA["b"], Clock()() + dt.timedelta(hours=2)))

    # staging's own seq 2, replayed at seq 4 (its signed body says seq 2): out of chain too.
    s3.delete_object(Bucket=BUCKET, Key=f"{PREFIX}/staging/{3:010d}.json")
    put(s3, "staging", 3, s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/staging/{2:010d}.json")["Body"].read())
    assert [(u.seq, u.check) for u in staging.scan().unreadable] == [(3, "out of chain")]


def test_a_record_at_seq_9999999999_is_foreign_and_blocks_nothing(store, s3):
    clock = Clock()
    book = ledger(store, clock=clock)
    promote(book, "1.0.0", SHA["a"])
    doc = {**raw(s3, "staging", 2), "seq": 9999999999}
    put(s3, "staging", 9999999999, doc)
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/staging/12.json", Body=b"{}")  # not a 10-digit key either

    assert book.seqs() == [1, 2]
    history = read_history(book, limit=None)
    assert {(u.seq, u.check) for u in history.unreadable} == {(9999999999, "foreign"), (None, "foreign")}
    assert any("9999999999" in line for line in history.flagged) and history.trusted
    # The next promote and a forced rollback both append at head + 1, as before.
    third = promote(book, "1.1.0", SHA["b"], before="1.0.0", before_digest=SHA["a"])
    assert third.seq == 4 and book.seqs() == [1, 2, 3, 4]
    opened = book.open(event="rollback", actor=ALICE, from_version="1.1.0", to_version="1.0.0", changes=[],
                       forced=True, reason="INC-9")
    assert opened.seq == 5
    assert live_state(book.records())["orders"].digest == SHA["b"]


def test_a_corrupt_record_makes_the_ledger_untrusted_until_a_forced_run_takes_over(store, s3):
    book = ledger(store)
    promote(book, "1.0.0", SHA["a"])
    put(s3, "staging", 3, b"{not json")

    with pytest.raises(VerificationFailed, match="seq 3|0000000003.json: corrupt"):
        book.records()
    # A plain run cannot read who holds the environment; a forced take-over passes over the unreadable record.
    with pytest.raises(VerificationFailed):
        book.open(event="rollback", actor=ALICE, from_version=None, to_version=None, changes=[])
    opened = book.open(event="rollback", actor=ALICE, from_version=None, to_version=None, changes=[],
                       forced=True, reason="INC-3: corrupt record 3", take_over=True)
    assert opened.seq == 4 and book.scan().problems == []


def _race(book: Ledger, runs: int) -> tuple[list, list]:
    """`runs` identical opens released at once; (records written, RaceLost errors)."""
    barrier = threading.Barrier(runs)
    won: list = []
    lost: list = []

    def run():
        barrier.wait()
        try:
            won.append(book.open(event="rollback", actor=ALICE, from_version="1.1.0", to_version="1.0.0", changes=[]))
        except RaceLost as exc:
            lost.append(exc)

    threads = [threading.Thread(target=run) for _ in range(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won, lost


def test_ten_identical_runs_at_once_exactly_one_takes_the_environment(store):
    """Identical requests, same actor, same clock (whole seconds used to make their records byte-identical)."""
    book = ledger(store)
    for _ in range(5):  # small N: each round is ten conditional puts against moto
        base = len(book.seqs())
        won, lost = _race(book, 10)
        assert len(won) == 1 and len(lost) == 9, (won, lost)
        assert all(exc.exit_code == 10 for exc in lost)
        book.close(won[0], status="succeeded")
        assert [r.status for r in book.records()[base:]] == ["started", "succeeded"]


def test_only_the_run_holding_the_environment_closes_it(store):
    clock = Clock()
    book = ledger(store, clock=clock)
    opened = book.open(event="promote", actor=ALICE, from_version=None, to_version="1.0.0", changes=[],
                       lease=dt.timedelta(minutes=5))

    # Another run that copied the started record (same seq, same everything but its own run id) may not close it.
    impostor = attrs.evolve(opened, run_id=str(uuid.uuid4()))
    with pytest.raises(RaceLost, match="not this run's started record"):
        book.close(impostor, status="succeeded")
    # The run itself closes once; closing again (a retry after a lost reply) returns the same record.
    closed = book.close(opened, status="succeeded")
    assert book.close(opened, status="succeeded") == closed
    with pytest.raises(RaceLost, match="already closed"):
        book.close(opened, status="failed")
    assert [r.status for r in book.records()] == ["started", "succeeded"]


def test_a_run_superseded_after_its_lease_ran_out_cannot_close_and_shows_as_superseded(store):
    clock = Clock()
    book = ledger(store, clock=clock)
    dead = book.open(event="promote", actor=ALICE, from_version="1.0.0", to_version="1.1.0", changes=[],
                     lease=dt.timedelta(minutes=5))
    clock.advance(minutes=10)
    assert read_history(book, limit=None).entries[0].state == "died"
    taker = book.open(event="rollback", actor=ALICE, from_version="1.1.0", to_version="1.0.0", changes=[])
    assert taker.supersedes == dead.seq

    with pytest.raises(RaceLost, match="superseded by the run that started at seq 2"):
        book.close(dead, status="succeeded")
    book.close(taker, status="succeeded")
    states = {e.first.seq: (e.state, e.superseded_by) for e in read_history(book, limit=None).entries}
    assert states == {1: ("superseded", 2), 2: ("succeeded", None)}


def test_a_run_taken_over_while_it_applied_ends_with_exit_10_not_a_second_outcome(store):
    from types import SimpleNamespace

    from builder.promote.outcome import close_after_success

    clock = Clock()
    book = ledger(store, clock=clock)
    slow = book.open(event="promote", actor=ALICE, from_version=None, to_version="1.0.0", changes=[],
                     lease=dt.timedelta(minutes=5))
    clock.advance(minutes=6)
    book.open(event="rollback", actor=ALICE, from_version=None, to_version=None, changes=[])
    plan = SimpleNamespace(event="promote", app="shop", to_version="1.0.0", env="staging", changes=lambda versions: ())

    with pytest.raises(RaceLost) as caught:
        close_after_success(book, slow, plan, {})
    assert caught.value.exit_code == 10 and "no longer holds the environment" in caught.value.message
    assert [r.status for r in book.records()] == ["started", "started"]
