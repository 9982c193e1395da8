"""Issue 11, Build item 1: `requires` checks the required environment's facts, not only its ledger.

Against the moto accounts. The documented on-call path: roll staging back
while the registry is out of reach (the rollback succeeds, its ledger record
cannot be written), so staging's ledger still says the newer release is live.
Promoting that rolled-back release to prod must be refused by `requires`,
naming the digest staging actually serves (read from staging's account with
its own session), and the refusal is what the ledger and `--json` show.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "promote"))

from promote_helpers import FUNCTIONS, Shop, new_shop

from builder.errors import GateRefused
from builder.promote.factory import run_rollback
from builder.promote.rollback import RollbackRequest

GATE_REFUSED = 9


@pytest.fixture
def shop(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    return new_shop(aws, tmp_path)


def staging_rolled_back_without_a_record(shop: Shop) -> None:
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    shop.set_code("orders", "b")
    shop.publish("1.1.0")
    shop.promote("1.1.0", "staging")
    shop.clock.advance(2 * 3600)  # well past prod's 30m soak
    good = shop.config.read_text()
    shop.config.write_text(good.replace('bucket = "relay-artifacts"', 'bucket = "no-such-bucket"'))
    records = len(shop.ledger("staging"))
    run_rollback(shop.project(), "staging", RollbackRequest(reason="1.1.0 breaks checkout"), clock=shop.clock)
    shop.config.write_text(good)
    assert len(shop.ledger("staging")) == records  # the rollback's record could not be written
    assert shop.ledger("staging")[-1]["to_version"] == "1.1.0"  # so the ledger still says 1.1.0 is live
    assert shop.live_code("staging", "orders") == shop.release("1.0.0")["functions"]["orders"]["code_sha256"]


def test_a_release_rolled_back_in_staging_without_a_record_is_refused_for_prod(shop: Shop) -> None:
    staging_rolled_back_without_a_record(shop)
    actual = shop.release("1.0.0")["functions"]["orders"]["sha256"]
    wanted = shop.release("1.1.0")["functions"]["orders"]["sha256"]

    with pytest.raises(GateRefused) as raised:
        shop.promote("1.1.0", "prod")

    message = raised.value.message
    assert raised.value.exit_code == GATE_REFUSED
    assert f"staging serves sha256 {actual[:12]}.. for orders" in message, message
    assert f"not the release's {wanted[:12]}.." in message
    assert "soak" not in message  # the soak passed: only the facts refuse
    assert shop.function_names("prod") == []  # nothing deployed
    refusal = shop.ledger("prod")[-1]
    assert refusal["status"] == "refused" and actual[:12] in refusal["reason"]


def test_the_refusal_through_the_cli_names_the_actual_digest_and_its_evidence(shop: Shop, relay) -> None:
    staging_rolled_back_without_a_record(shop)
    actual = shop.release("1.0.0")["functions"]["orders"]["sha256"]

    run = relay("promote", "1.1.0", "--to", "prod", cwd=shop.root)
    assert run.code == GATE_REFUSED, run
    assert f"staging serves sha256 {actual[:12]}.. for orders" in run.stderr

    planned = relay("promote", "1.1.0", "--to", "prod", "--dry-run", "--json", cwd=shop.root)
    gates = {(g["name"], g["subject"]): g for g in planned.json()["gates"]}
    orders = gates["requires", "orders"]
    assert orders["ok"] is False and actual in orders["evidence"]["served"]
    for fn in FUNCTIONS:
        if fn != "orders":  # unchanged code: staging serves the release's bytes, and the gate says so
            assert gates["requires", fn]["ok"] is True and "its alias serves those bytes" in gates["requires", fn]["detail"]
