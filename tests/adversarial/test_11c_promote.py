"""Issue 11, item 12: a malformed release document refuses only itself in promote, rollback --to and diff.

Through the CLI, against the moto accounts: the bad release is refused with
exit 8 where it is the one asked for, and every other release still promotes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "promote"))

from promote_helpers import BUCKET, Shop, new_shop
from test_11c_config import assert_clean_error


@pytest.fixture
def shop(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    return new_shop(aws, tmp_path)


def test_a_malformed_release_blocks_only_itself(shop: Shop, relay) -> None:
    shop.publish("1.0.0")
    shop.set_code("orders", "b")
    shop.publish("1.1.0")
    shop.set_code("orders", "c")
    shop.publish("1.2.0")
    s3 = shop.client("registry", "s3")
    key = "relay/shop/releases/1.1.0.json"
    real = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({**real, "functions": list(real["functions"])}).encode())

    assert relay("promote", "1.0.0", "--to", "staging", cwd=shop.root).code == 0
    live = shop.alias("staging", "orders")["FunctionVersion"]

    refused = relay("promote", "1.1.0", "--to", "staging", cwd=shop.root)
    assert_clean_error(refused, 8, "1.1.0")
    assert shop.alias("staging", "orders")["FunctionVersion"] == live

    promoted = relay("promote", "1.2.0", "--to", "staging", cwd=shop.root)  # the others are not blocked
    assert promoted.code == 0, promoted
    assert shop.alias("staging", "orders")["FunctionVersion"] != live

    bad_rollback = relay("rollback", "--env", "staging", "--to", "1.1.0", "--reason", "test", cwd=shop.root)
    # A clean refusal that changes nothing (exit 12 today: RollbackRunner._release reads a VerificationFailed as
    # "registry out of reach"; exit 8 once it lets VerificationFailed through).
    assert bad_rollback.code == 8, bad_rollback
    assert_clean_error(bad_rollback, bad_rollback.code, "1.1.0")
    assert shop.alias("staging", "orders")["FunctionVersion"] != live
    rolled = relay("rollback", "--env", "staging", "--to", "1.0.0", "--reason", "test", cwd=shop.root)
    assert rolled.code == 0, rolled
    assert shop.alias("staging", "orders")["FunctionVersion"] == live

    diff = relay("diff", "1.0.0", "1.2.0", cwd=shop.root)
    assert diff.code == 0, diff
    assert_clean_error(relay("diff", "1.1.0", "1.2.0", cwd=shop.root), 8, "1.1.0")

    listing = relay("versions", "--json", cwd=shop.root)
    assert [v["version"] for v in listing.json()["versions"]] == ["1.2.0", "1.0.0"]
