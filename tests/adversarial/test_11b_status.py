"""Issue 11, item 4: status sees everything that serves traffic, routing weights included.

Against the moto accounts: a routing weight set by hand (boto3 `update_alias(RoutingConfig=...)`)
to a version with other code is drift like the main version, and `relay status --check` exits 14;
a weight to a version of a release relay published is not.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "promote"))

from promote_helpers import Shop, new_shop

DRIFT_FOUND = 14


@pytest.fixture
def shop(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    return new_shop(aws, tmp_path)


def hand_made_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("orders/handler.py", "def handle(event, context):\n    return 'sent half the traffic here by hand'\n")
    return buffer.getvalue()


def publish_by_hand(shop: Shop, description: str) -> str:
    lam = shop.lam("staging")
    lam.update_function_code(FunctionName="shop-orders", ZipFile=hand_made_zip())
    lam.get_waiter("function_updated_v2").wait(FunctionName="shop-orders")
    return lam.publish_version(FunctionName="shop-orders", Description=description)["Version"]


def weight(shop: Shop, version: str, share: float = 0.5) -> None:
    live = shop.alias("staging", "orders")["FunctionVersion"]
    shop.lam("staging").update_alias(FunctionName="shop-orders", Name="live", FunctionVersion=live,
                                     RoutingConfig={"AdditionalVersionWeights": {version: share}})


def orders_row(run) -> dict:
    doc = run.json()
    staging = next(e for e in doc["environments"] if e["env"] == "staging")
    return next(f for f in staging["functions"] if f["function"] == "orders")


def test_half_the_traffic_sent_by_hand_to_other_code_is_drift(shop: Shop, relay) -> None:
    shop.publish("1.0.0")
    assert relay("promote", "1.0.0", "--to", "staging", cwd=shop.root).code == 0
    assert relay("status", "--check", "--env", "staging", cwd=shop.root).code == 0
    version = publish_by_hand(shop, "hotfix")
    weight(shop, version)

    run = relay("status", "--check", "--env", "staging", "--json", cwd=shop.root)

    assert run.code == DRIFT_FOUND, run
    row = orders_row(relay("status", "--env", "staging", "--json", cwd=shop.root))
    assert row["weights"] == {version: 0.5} and row["drifted"] is True
    assert any(f"50% of traffic to version {version}" in d and "did not publish" in d for d in row["drift"]), row
    text = relay("status", "--env", "staging", cwd=shop.root).stdout
    assert "DRIFT" in text and f"version {version}" in text


def test_a_weighted_version_wearing_a_copied_relay_description_is_drift(shop: Shop, relay) -> None:
    shop.publish("1.0.0")
    assert relay("promote", "1.0.0", "--to", "staging", cwd=shop.root).code == 0
    live = shop.alias("staging", "orders")["FunctionVersion"]
    mark = shop.version_config("staging", "orders", live)["Description"]  # relay's mark: "relay shop/orders@1.0.0 sha256:.."
    version = publish_by_hand(shop, mark)
    weight(shop, version, 0.1)

    run = relay("status", "--check", "--env", "staging", "--json", cwd=shop.root)

    assert run.code == DRIFT_FOUND, run
    row = orders_row(relay("status", "--env", "staging", "--json", cwd=shop.root))
    assert any(f"version {version}" in d and "is not the sha256 its description names" in d for d in row["drift"]), row


def test_a_weight_to_a_version_of_a_published_release_is_not_drift(shop: Shop, relay) -> None:
    shop.publish("1.0.0")
    assert relay("promote", "1.0.0", "--to", "staging", cwd=shop.root).code == 0
    old = shop.alias("staging", "orders")["FunctionVersion"]
    shop.set_code("orders", "b")
    shop.publish("1.1.0")
    assert relay("promote", "1.1.0", "--to", "staging", cwd=shop.root).code == 0
    new = shop.alias("staging", "orders")["FunctionVersion"]
    assert new != old
    weight(shop, old, 0.5)  # half back on 1.0.0's version: relay's code, just not routed by relay

    run = relay("status", "--check", "--env", "staging", "--json", cwd=shop.root)

    assert run.code == 0, run
    assert orders_row(run)["weights"] == {old: 0.5}
