"""Settings belong to the signed release; each environment adds its own values (issue 10).

Against the moto server with the three accounts; each account is read with its own session.
"""

from __future__ import annotations

import json
import zipfile
from io import BytesIO

import pytest

from builder.commands.render.diff import diff_summary
from builder.commands.render.promote import promote_summary
from builder.errors import ConfigError, LimitExceeded
from builder.promote.promoter import PromoteRequest
from builder.registry import publish as publishing
from builder.registry.diff import diff_versions
from builder.registry.factory import open_store, trusted_keys

TABLE = 'environment = { TABLE_NAME = "shop-orders-{env}" }\n'


def _set(shop, old: str, new: str) -> None:
    text = shop.config.read_text()
    assert old in text, old
    shop.config.write_text(text.replace(old, new, 1))


def _per_env_table(shop) -> None:
    shop.staging_extra = f"[environments.staging.functions.orders]\n{TABLE}"
    shop.prod_extra = f"[environments.prod.functions.orders]\n{TABLE}"
    shop.write_config()


def test_one_release_gets_each_environments_own_value_with_identical_code(shop):
    _per_env_table(shop)
    shop.publish("1.0.0")
    recorded = shop.release("1.0.0")["functions"]["orders"]["settings"]
    assert recorded["environment"] == {"TAX_RATE": "0.08"}  # the release holds the artifact's values, not an environment's
    assert recorded["memory"] == 256

    shop.promote("1.0.0", "staging")
    shop.clock.advance(3600)
    shop.promote("1.0.0", "prod")

    staging, prod = (shop.version_config(env, "orders", "live") for env in ("staging", "prod"))
    assert staging["Environment"]["Variables"] == {"TAX_RATE": "0.08", "TABLE_NAME": "shop-orders-staging"}
    assert prod["Environment"]["Variables"] == {"TAX_RATE": "0.08", "TABLE_NAME": "shop-orders-prod"}
    assert staging["CodeSha256"] == prod["CodeSha256"]
    assert staging["FunctionArn"].split(":")[4] == "222222222222" and prod["FunctionArn"].split(":")[4] == "333333333333"

    (change,) = [c for c in shop.ledger("prod")[-1]["changes"] if c["function"] == "orders"]
    assert change["settings"] == {"environment": {"TABLE_NAME": "shop-orders-prod"}}
    assert len(change["settings_sha256"]) == 64
    assert shop.promote("1.0.0", "staging").status == "unchanged"  # the environment's values are what is there


def test_promoting_an_older_release_deploys_its_own_settings_not_the_checkouts(shop):
    shop.publish("1.0.0")
    _set(shop, "memory = 256", "memory = 1024")
    _set(shop, 'TAX_RATE = "0.08"', 'TAX_RATE = "0.10"')
    shop.set_code("orders", "b")
    shop.publish("1.1.0")

    shop.promote("1.1.0", "staging")
    assert shop.version_config("staging", "orders", "live")["MemorySize"] == 1024
    shop.promote("1.0.0", "staging")  # from the 1.1.0 checkout
    live = shop.version_config("staging", "orders", "live")
    assert live["MemorySize"] == 256
    assert live["Environment"]["Variables"] == {"TAX_RATE": "0.08"}

    project = shop.project()
    diff = diff_versions(open_store(project), "shop", "1.0.0", "1.1.0", trusted_keys(project, None))
    (orders,) = [b for b in diff.bundles if b.bundle == "orders"]
    assert [(c.key, c.from_value, c.to_value) for c in orders.settings] == [
        ("environment.TAX_RATE", "0.08", "0.10"), ("memory", 256, 1024)]
    shown = diff_summary(diff)
    assert "~ memory 256 -> 1024" in shown and "~ environment.TAX_RATE 0.08 -> 0.10" in shown
    assert "orders: settings" in shown


def test_a_third_party_layer_is_attached_in_the_given_order_and_counts_toward_the_limit(shop):
    lam = shop.lam("staging")
    archive = BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("python/ext.py", "X = 1\n")
    arn = lam.publish_layer_version(LayerName="powertools", Content={"ZipFile": archive.getvalue()},
                                    CompatibleRuntimes=["python3.12"])["LayerVersionArn"]
    assert arn.split(":")[3] == "us-east-1"
    written = arn.replace(":us-east-1:", ":{region}:")
    _set(shop, 'handler = "orders.handler.handle"\nlayers = ["common"]',
         f'handler = "orders.handler.handle"\nlayers = ["{written}", "common"]')
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")

    layers = [layer["Arn"] for layer in shop.version_config("staging", "orders", "live")["Layers"]]
    assert layers[0] == arn and ":layer:shop-common:" in layers[1] and len(layers) == 2
    assert shop.promote("1.0.0", "staging").status == "unchanged"

    five = ", ".join(f'"arn:aws:lambda:us-east-1:111111111111:layer:l{i}:1"' for i in range(5))
    _set(shop, f'layers = ["{written}", "common"]', f'layers = ["common", {five}]')
    with pytest.raises(LimitExceeded, match="6 layers > 5"):
        shop.project()


def test_a_secret_access_key_in_the_config_is_refused_at_publish_with_its_key_path(shop):
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    _set(shop, 'TAX_RATE = "0.08"', f'TAX_RATE = "0.08", AWS_KEY = "{secret}"')
    with pytest.raises(ConfigError) as caught:
        shop.publish("1.0.0")
    assert "functions.orders.environment.AWS_KEY" in caught.value.message
    assert secret not in json.dumps(caught.value.to_json())
    assert caught.value.exit_code == 3
    s3 = shop.client("registry", "s3")
    assert s3.list_objects_v2(Bucket="relay-artifacts", Prefix="relay/shop/releases/").get("KeyCount", 0) == 0


def test_a_release_without_recorded_settings_still_promotes_with_the_checkouts(shop, monkeypatch):
    # What an older relay published: the same signed document, without settings.
    with monkeypatch.context() as patched:
        patched.setattr(publishing._Publisher, "_recorded_settings", lambda self, manifest: {})
        shop.publish("1.0.0")
    assert all("settings" not in fn for fn in shop.release("1.0.0")["functions"].values())

    _set(shop, "memory = 256", "memory = 512")
    result = shop.promote("1.0.0", "staging")
    assert shop.version_config("staging", "orders", "live")["MemorySize"] == 512
    assert {f.settings_from for f in result.plan.functions} == {"relay.toml"}


def test_the_dry_run_shows_what_each_function_ends_up_with(shop):
    _per_env_table(shop)
    shop.publish("1.0.0")
    promoter = shop.promoter("prod")
    result = promoter.promote(PromoteRequest("1.0.0", dry_run=True, force=True, reason="look"))
    (orders,) = [f for f in result.plan.functions if f.function == "orders"]
    assert dict(orders.settings.environment)["TABLE_NAME"] == "shop-orders-prod"
    (shown,) = [f for f in result.plan.to_json()["functions"] if f["function"] == "orders"]
    assert shown["settings_overridden"] == {"environment": {"TABLE_NAME": "shop-orders-prod"}}
    assert shown["settings"]["environment"] == {"TABLE_NAME": "shop-orders-prod", "TAX_RATE": "0.08"}
    text = promote_summary(result)
    assert "Settings in prod" in text and "TABLE_NAME=shop-orders-prod*" in text and "TAX_RATE=0.08*" not in text
