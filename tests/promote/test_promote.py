"""Promotion across accounts, against the moto server: staging, then prod, each through its own session."""

from __future__ import annotations

import pytest
from promote_helpers import FUNCTIONS

from builder.commands.render.promote import promote_summary
from builder.errors import GateRefused, NotFound, UsageError
from builder.promote.instructions import ReuseLayer


def test_promote_to_staging_then_prod_serves_the_manifests_bytes_in_each_account(shop):
    shop.publish("1.0.0")
    release = shop.release("1.0.0")

    staging = shop.promote("1.0.0", "staging")
    shop.clock.advance(31 * 60)  # prod soaks staging's release for 30 minutes
    prod = shop.promote("1.0.0", "prod")

    assert staging.status == prod.status == "succeeded"
    for env in ("staging", "prod"):
        for fn in FUNCTIONS:
            alias = shop.alias(env, fn)
            version = shop.version_config(env, fn, alias["FunctionVersion"])
            assert version["CodeSha256"] == release["functions"][fn]["code_sha256"]
            assert version["FunctionArn"].split(":")[4] == shop.aws.account(env)
            assert version["Description"] == f"relay shop/{fn}@1.0.0 sha256:{release['functions'][fn]['sha256']}"
            layers = [layer["Arn"] for layer in version["Layers"]]
            assert len(layers) == 1 and f":{shop.aws.account(env)}:layer:shop-common:" in layers[0]
        assert shop.function_names(env) == [f"shop-{fn}" for fn in FUNCTIONS]
        assert shop.version_config(env, "orders", "live")["Environment"]["Variables"] == {"TAX_RATE": "0.08"}
        assert shop.version_config(env, "orders", "live")["MemorySize"] == 256
        assert shop.version_config(env, "billing", "live")["Architectures"] == ["arm64"]
    # Nothing of the app in the registry account: no function, no layer.
    registry_lambda = shop.lam("registry")
    assert registry_lambda.list_functions()["Functions"] == []
    assert registry_lambda.list_layers()["Layers"] == []


def test_a_release_changing_one_function_publishes_a_new_version_of_that_function_only(shop):
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    before = {fn: shop.alias("staging", fn)["FunctionVersion"] for fn in FUNCTIONS}
    shop.set_code("orders", "b")
    shop.publish("1.1.0")

    result = shop.promote("1.1.0", "staging")

    actions = {f.function: f.action for f in result.plan.functions}
    assert actions == {"orders": "deploy", "billing": "unchanged", "notify": "unchanged"}
    assert [type(layer) for layer in result.plan.layers] == [ReuseLayer, ReuseLayer]  # the layer's bytes did not change
    after = {fn: shop.alias("staging", fn)["FunctionVersion"] for fn in FUNCTIONS}
    assert after == {**before, "orders": "2"}
    assert {fn: len(shop.versions("staging", fn)) for fn in FUNCTIONS} == {"orders": 2, "billing": 1, "notify": 1}
    assert shop.live_code("staging", "orders") == shop.release("1.1.0")["functions"]["orders"]["code_sha256"]
    alias = shop.alias("staging", "orders")
    assert '"previous":"1"' in alias["Description"] and '"version":"1.1.0"' in alias["Description"]


def test_prod_refuses_until_staging_ran_the_release_and_the_soak_passed(shop):
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    shop.clock.advance(3600)
    shop.promote("1.0.0", "prod")
    shop.set_code("orders", "b")
    shop.publish("1.1.0")

    with pytest.raises(GateRefused) as never_ran:
        shop.promote("1.1.0", "prod")
    assert never_ran.value.exit_code == 9
    assert "staging has not run orders" in never_ran.value.message

    shop.promote("1.1.0", "staging")
    shop.clock.advance(10 * 60)
    with pytest.raises(GateRefused) as soaking:
        shop.promote("1.1.0", "prod")
    assert "soak" in soaking.value.message and "20m to go" in soaking.value.message
    assert shop.alias("prod", "orders")["FunctionVersion"] == "1"  # nothing moved

    shop.clock.advance(20 * 60)
    passed = shop.promote("1.1.0", "prod")
    assert passed.status == "succeeded" and not passed.forced
    assert shop.alias("prod", "orders")["FunctionVersion"] == "2"

    records = shop.ledger("prod")
    assert [(r["event"], r["status"]) for r in records] == [
        ("promote", "started"), ("promote", "succeeded"), ("promote", "refused"), ("promote", "refused"),
        ("promote", "started"), ("promote", "succeeded")]
    assert "soak" in records[3]["reason"]
    assert records[3]["from_version"] == "1.0.0" and records[3]["to_version"] == "1.1.0"  # what the refusal kept


def test_force_with_a_reason_overrides_the_gates_and_the_ledger_records_it(shop):
    shop.publish("1.0.0")

    with pytest.raises(UsageError):
        shop.promote("1.0.0", "prod", force=True)
    result = shop.promote("1.0.0", "prod", force=True, reason="hotfix INC-42, staging is down")

    assert result.status == "succeeded" and result.forced
    assert any(not g.ok and g.name == "requires" for g in result.gates)
    started, closed = shop.ledger("prod")
    assert started["forced"] and closed["forced"]
    assert closed["status"] == "succeeded" and closed["reason"] == "hotfix INC-42, staging is down"


def test_dry_run_prints_the_plan_and_writes_nothing_not_even_the_ledger(shop):
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    shop.set_code("orders", "b")
    shop.publish("1.1.0")
    registry_before = shop.aws.client("registry", "s3").list_objects_v2(Bucket="relay-artifacts")["KeyCount"]

    planned = shop.promote("1.1.0", "staging", dry_run=True)
    refused = shop.promote("1.1.0", "prod", dry_run=True)  # would be refused: it says so, records nothing

    assert planned.status == "planned"
    assert {f.function: f.action for f in planned.plan.functions}["orders"] == "deploy"
    text = promote_summary(planned)
    assert "update code" in text and "Dry run" in text
    assert refused.would_refuse and refused.to_json()["would_refuse"]
    assert {f.action for f in refused.plan.functions} == {"create"}
    assert shop.alias("staging", "orders")["FunctionVersion"] == "1"
    assert len(shop.versions("staging", "orders")) == 1
    assert shop.function_names("prod") == []
    assert shop.aws.client("registry", "s3").list_objects_v2(Bucket="relay-artifacts")["KeyCount"] == registry_before


def test_only_promotes_the_named_functions(shop):
    shop.publish("1.0.0")

    result = shop.promote("1.0.0", "staging", only=("orders",))

    assert [f.function for f in result.plan.functions] == ["orders"]
    assert [layer.bundle for layer in result.plan.layers] == ["layer-common-x86_64"]
    assert shop.function_names("staging") == ["shop-orders"]
    with pytest.raises(NotFound):
        shop.promote("1.0.0", "staging", only=("nope",))


def test_a_missing_function_without_a_role_is_refused_clearly_and_nothing_is_touched(shop):
    shop.config.write_text(shop.config.read_text().replace('role = "arn:aws:iam::{account}:role/relay-exec"\n', "", 1))
    shop.publish("1.0.0")

    with pytest.raises(NotFound) as caught:
        shop.promote("1.0.0", "staging")

    assert "shop-orders does not exist in staging" in caught.value.message
    assert "billing" not in caught.value.message  # the others have a role
    assert "functions.orders.role" in caught.value.hint
    assert shop.function_names("staging") == []
    assert shop.lam("staging").list_layers()["Layers"] == []
    assert shop.ledger("staging") == []


def test_a_session_in_the_wrong_account_is_refused_before_any_lambda_call(shop):
    text = shop.config.read_text()
    shop.config.write_text(text.replace('role = "arn:aws:iam::222222222222:role/relay-deployer"',
                                        'role = "arn:aws:iam::333333333333:role/relay-deployer"'))
    shop.publish("1.0.0")

    from builder.errors import AwsError

    with pytest.raises(AwsError) as caught:
        shop.promote("1.0.0", "staging")
    assert "not 222222222222" in caught.value.message
    assert shop.function_names("prod") == [] and shop.function_names("staging") == []


def test_bundles_larger_than_the_inline_limit_go_through_the_environments_deploy_bucket(shop):
    shop.staging_extra = 'deploy_bucket = "shop-deploy-staging"\n'
    shop.write_config()
    shop.aws.client("staging", "s3").create_bucket(Bucket="shop-deploy-staging")
    shop.publish("1.0.0")
    promoter = shop.promoter("staging")
    promoter.executor.inline_limit = 64  # every bundle here is larger than this

    from builder.promote.promoter import PromoteRequest

    result = promoter.promote(PromoteRequest("1.0.0"))

    assert result.status == "succeeded"
    release = shop.release("1.0.0")
    for fn in FUNCTIONS:
        assert shop.live_code("staging", fn) == release["functions"][fn]["code_sha256"]
    keys = [o["Key"] for o in shop.aws.client("staging", "s3").list_objects_v2(Bucket="shop-deploy-staging")["Contents"]]
    expected = {f"relay/blobs/{release['functions'][fn]['sha256']}.zip" for fn in FUNCTIONS}
    assert expected <= set(keys)


def test_without_a_deploy_bucket_a_bundle_over_the_inline_limit_is_refused_before_any_alias_moves(shop):
    shop.publish("1.0.0")
    promoter = shop.promoter("staging")
    promoter.executor.inline_limit = 64

    from builder.errors import LimitExceeded
    from builder.promote.executor import ApplyFailed
    from builder.promote.promoter import PromoteRequest

    with pytest.raises(ApplyFailed) as caught:
        promoter.promote(PromoteRequest("1.0.0"))
    assert caught.value.exit_code == LimitExceeded.exit_code
    assert "more than Lambda takes inline" in caught.value.message
    assert "deploy_bucket" in caught.value.hint
    assert shop.function_names("staging") == []
