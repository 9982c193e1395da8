"""Issue 11, items 2 and 3 against the moto accounts: one run at a time, dead runs, a broken ledger.

- identical rollbacks and promotes started at once: exactly one acts, every
  "started" record is closed exactly once, the alias is what the ledger's last
  record says, and no extra Lambda versions appear;
- kill -9 of a canary promote of 1.3.13 over a live 1.3.12: the command the
  hint names puts 1.3.12 back (not 1.3.11), and history says the dead run was
  superseded;
- a corrupt ledger record refuses rollback (exit 8) unless --force --reason,
  and the forced rollback takes the lock and is recorded.

Repetitions are small (N below) to keep the suite's added time low: the
issue's 20 x 10 would take minutes against moto. Each round still races ten
runs released by one barrier.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "promote"))

from promote_helpers import BUCKET, FUNCTIONS, Shop, new_shop

from builder.errors import RaceLost
from builder.promote.factory import run_promote, run_rollback
from builder.promote.promoter import PromoteRequest
from builder.promote.rollback import RollbackRequest

RUNS = 10
# 3 rounds keep the suite short; RELAY_RACE_ROUNDS=20 runs the full 20 repetitions.
ROUNDS = int(os.environ.get("RELAY_RACE_ROUNDS", "3"))


@pytest.fixture
def shop(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    return new_shop(aws, tmp_path)


def race(target, runs: int = RUNS) -> tuple[list, list]:
    barrier = threading.Barrier(runs)
    results: list = []
    lost: list = []
    errors: list = []

    def run():
        barrier.wait()
        try:
            results.append(target())
        except RaceLost as exc:
            lost.append(exc)
        except Exception as exc:  # e.g. "applied, but its ledger record could not be written": two runs acted
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results, lost


def assert_ledger_consistent(shop: Shop, env: str) -> list[dict]:
    """Every started record closed exactly once, by its own run; runs never overlap; aliases = the last record."""
    records = shop.ledger(env)
    closers: dict[int, list[dict]] = {}
    for record in records:
        if record.get("opened") is not None:
            closers.setdefault(record["opened"], []).append(record)
    for record in records:
        if record["status"] == "started":
            closed = closers.get(record["seq"], [])
            assert len(closed) == 1, (record["seq"], closed)
            assert closed[0]["run_id"] == record["run_id"]
            between = [r for r in records if record["seq"] < r["seq"] < closed[0]["seq"] and r["status"] == "started"]
            assert between == [], f"run {record['seq']} overlapped {between}"
    last = [r for r in records if r["status"] == "succeeded"][-1]
    for change in last["changes"]:
        assert shop.alias(env, change["function"])["FunctionVersion"] == change["to_version"]
    return records


def test_identical_rollbacks_at_once_exactly_one_acts(shop):
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    project = shop.project()
    for round_ in range(ROUNDS):
        shop.set_code("orders", f"r{round_}")
        shop.publish(f"1.1.{round_}")
        shop.promote(f"1.1.{round_}", "staging")
        versions = {fn: len(shop.versions("staging", fn)) for fn in FUNCTIONS}

        results, lost = race(lambda: run_rollback(project, "staging", RollbackRequest()))

        acted = [r for r in results if r.status == "succeeded"]
        assert len(acted) == 1, [(r.status, r.versions) for r in results]
        assert len(lost) + len([r for r in results if r.status != "succeeded"]) == RUNS - 1
        assert all(exc.exit_code == 10 for exc in lost)
        assert {fn: len(shop.versions("staging", fn)) for fn in FUNCTIONS} == versions  # none published
        records = assert_ledger_consistent(shop, "staging")
        assert records[-1]["event"] == "rollback" and records[-1]["to_version"] == "1.0.0"


def test_identical_promotes_at_once_deploy_once(shop):
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    project = shop.project()
    for round_ in range(ROUNDS):
        shop.set_code("orders", f"p{round_}")
        version = f"1.2.{round_}"
        shop.publish(version)
        before = {fn: len(shop.versions("staging", fn)) for fn in FUNCTIONS}

        results, lost = race(lambda v=version: run_promote(project, "staging", PromoteRequest(v)))

        acted = [r for r in results if r.status == "succeeded"]
        assert len(acted) == 1, [(r.status, dict(r.versions)) for r in results]
        assert all(r.status == "unchanged" for r in results if r not in acted)
        assert all(exc.exit_code == 10 for exc in lost)
        after = {fn: len(shop.versions("staging", fn)) for fn in FUNCTIONS}
        assert after == {fn: before[fn] + (fn == "orders") for fn in FUNCTIONS}  # one new version, of orders only
        records = assert_ledger_consistent(shop, "staging")
        assert records[-1]["to_version"] == version and records[-1]["status"] == "succeeded"


def _wait_for_weights(shop: Shop, fn: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        weights = (shop.alias("staging", fn).get("RoutingConfig") or {}).get("AdditionalVersionWeights")
        if weights:
            return weights
        time.sleep(0.2)
    raise AssertionError("the canary never started")


def test_after_kill_9_mid_canary_the_hinted_recovery_puts_the_last_succeeded_release_back(shop, relay_cli):
    shop.watch_canary()
    shop.publish("1.3.11")
    shop.promote("1.3.11", "staging")
    shop.set_code("orders", "b")
    shop.publish("1.3.12")
    shop.promote("1.3.12", "staging")  # a canary on the fake clock: succeeds
    live = shop.alias("staging", "orders")["FunctionVersion"]
    assert live == "2"
    shop.set_code("orders", "c")
    shop.publish("1.3.13")

    # The real CLI in its own process, on the real clock: its first canary step waits 5 minutes. Kill it there.
    code = "import sys; from builder.cli import main; main(sys.argv[1:])"
    proc = subprocess.Popen([sys.executable, "-c", code, "-C", str(shop.root), "promote", "1.3.13", "--to", "staging"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        assert _wait_for_weights(shop, "orders") == {"3": 0.1}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert shop.ledger("staging")[-1]["status"] == "started"  # nothing closed it

    busy = relay_cli("rollback", "--env", "staging", cwd=shop.root)
    assert busy.code == 10, busy.stderr
    assert "relay rollback --env staging --force --reason TEXT" in busy.stderr
    hinted = relay_cli("rollback", "--env", "staging", "--force", "--reason", "INC-11: promote killed", cwd=shop.root)
    assert hinted.code == 0, hinted.stderr

    alias = shop.alias("staging", "orders")
    assert (alias["FunctionVersion"], alias.get("RoutingConfig", {}).get("AdditionalVersionWeights") or {}) == ("2", {})
    assert shop.live_code("staging", "orders") == shop.version_config("staging", "orders", "2")["CodeSha256"]
    history = relay_cli("history", "--env", "staging", "--json", cwd=shop.root).json()
    states = [(e["event"], e["to_version"], e["state"], e["forced"]) for e in history["entries"]]
    assert states[:3] == [("rollback", None, "succeeded", True), ("promote", "1.3.13", "superseded", False),
                          ("promote", "1.3.12", "succeeded", False)], states
    assert history["trusted"]


def test_a_corrupt_record_refuses_rollback_unless_forced_and_the_forced_one_is_recorded(shop, relay_cli):
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    shop.set_code("orders", "b")
    shop.publish("1.1.0")
    shop.promote("1.1.0", "staging")
    s3 = shop.client("registry", "s3")
    s3.put_object(Bucket=BUCKET, Key="relay/shop/ledger/staging/0000000005.json", Body=b'{"seq": 5}')

    refused = relay_cli("rollback", "--env", "staging", cwd=shop.root)
    assert refused.code == 8, refused.stderr
    assert "0000000005.json: corrupt" in refused.stderr and "--force --reason" in refused.stderr
    assert shop.alias("staging", "orders")["FunctionVersion"] == "2"

    history = relay_cli("history", "--env", "staging", cwd=shop.root)
    assert history.code == 0 and "CORRUPT" in history.stdout and "cannot be trusted" in history.stdout

    forced = relay_cli("rollback", "--env", "staging", "--force", "--reason", "INC-5: bad record", cwd=shop.root)
    assert forced.code == 0, forced.stderr
    assert shop.alias("staging", "orders")["FunctionVersion"] == "1"
    records = shop.ledger("staging")
    assert [(r.get("seq"), r.get("status")) for r in records[-2:]] == [(6, "started"), (7, "succeeded")]
    assert records[-2]["forced"] and records[-2]["signature"]
    assert relay_cli("history", "--env", "staging", "--json", cwd=shop.root).json()["trusted"]


def test_a_forged_staging_record_is_flagged_by_history_and_the_prod_gate_refuses(shop, relay_cli):
    """The acceptance case: an attacker with the deployer's S3 rights appends 'staging ran 1.1.0' to staging's ledger."""
    import json

    from builder.registry.release import canonical_json

    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    shop.set_code("orders", "b")
    shop.publish("1.1.0")
    s3 = shop.client("registry", "s3")
    records = shop.ledger("staging")
    started, closed = dict(records[-2]), dict(records[-1])
    release = shop.release("1.1.0")
    forged_changes = [{**c, "to_artifact": "1.1.0", "to_digest": release["functions"][c["function"]]["sha256"]}
                      for c in closed["changes"]]
    for doc, seq in ((started, 3), (closed, 4)):
        doc.pop("signature")
        doc.update(seq=seq, at="2026-01-01T00:00:00Z", to_version="1.1.0", changes=forged_changes)
        if seq == 4:
            doc["opened"] = 3
        s3.put_object(Bucket=BUCKET, Key=f"relay/shop/ledger/staging/{seq:010d}.json", Body=canonical_json(doc))

    history = relay_cli("history", "--env", "staging", "--json", cwd=shop.root)
    doc = json.loads(history.stdout)
    assert not doc["trusted"] and doc["problems"][:2] == ["seq 3: unsigned", "seq 4: unsigned"]
    shop.clock.advance(7200)
    refused = relay_cli("promote", "1.1.0", "--to", "prod", cwd=shop.root)
    assert refused.code == 9, refused.stderr
    assert "the ledger of staging cannot be trusted: seq 3: unsigned" in refused.stderr
    assert shop.function_names("prod") == []
