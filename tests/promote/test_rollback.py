"""`relay rollback`: back to the previous versions from the ledger, or with only the target account reachable."""

from __future__ import annotations

import json

import pytest
from promote_helpers import FUNCTIONS

from builder.errors import NotFound, VerificationFailed
from builder.promote.factory import run_rollback
from builder.promote.rollback import RollbackRequest
from builder.registry.factory import open_signer


def two_releases_in_prod(shop):
    """1.0.0 then 1.1.0 (every function changed) promoted to staging and prod; returns 1.0.0's versions in prod."""
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    shop.clock.advance(3600)
    shop.promote("1.0.0", "prod")
    first = {fn: shop.alias("prod", fn)["FunctionVersion"] for fn in FUNCTIONS}
    for fn in FUNCTIONS:
        shop.set_code(fn, "b")
    shop.publish("1.1.0")
    shop.promote("1.1.0", "staging")
    shop.clock.advance(3600)
    shop.promote("1.1.0", "prod")
    return first


def rollback(shop, env="prod", **request):
    return run_rollback(shop.project(), env, RollbackRequest(**request), clock=shop.clock)


def test_rollback_restores_the_previous_versions_and_history_shows_it(shop, relay_cli):
    first = two_releases_in_prod(shop)
    release = shop.release("1.0.0")

    result = rollback(shop)

    assert result.status == "succeeded" and result.record is not None
    assert {f.note for f in result.plan.functions} == {"from the ledger"}
    for fn in FUNCTIONS:
        assert shop.alias("prod", fn)["FunctionVersion"] == first[fn]
        assert shop.live_code("prod", fn) == release["functions"][fn]["code_sha256"]
    history = relay_cli("history", "--env", "prod", "--json", cwd=shop.root)
    assert history.code == 0, history.stderr
    assert "rollback" in history.stdout
    events = [(r["status"], r["event"]) for r in shop.ledger("prod") if r["status"] != "started"]
    assert events == [("succeeded", "promote"), ("succeeded", "promote"), ("succeeded", "rollback")]
    assert shop.ledger("prod")[-1]["to_version"] == "1.0.0"


def test_relay_rollback_tells_people_where_the_aliases_went(shop, relay_cli):
    first = two_releases_in_prod(shop)

    run = relay_cli("rollback", "--env", "prod", cwd=shop.root)

    assert run.code == 0, run.stderr
    moved = ", ".join(f"{fn}:{first[fn]}" for fn in sorted(FUNCTIONS))
    assert f"Rolled back shop in prod: {moved}" in run.stdout
    assert f"Recorded in the ledger (seq {shop.ledger('prod')[-1]['seq']})." in run.stdout


@pytest.mark.parametrize("registry", ["reachable", "out of reach"])
def test_force_without_a_reason_is_refused_before_anything_moves(shop, relay_cli, registry):
    two_releases_in_prod(shop)
    before = {fn: shop.alias("prod", fn)["FunctionVersion"] for fn in FUNCTIONS}
    ledger_before = shop.ledger("prod")
    if registry == "out of reach":
        # Without the ledger nothing used to check the reason: the rule now holds before anything is read.
        shop.config.write_text(shop.config.read_text().replace('bucket = "relay-artifacts"', 'bucket = "no-such-bucket"'))

    run = relay_cli("rollback", "--env", "prod", "--force", cwd=shop.root)

    assert run.code == 2
    assert "error: --force needs --reason TEXT" in run.stderr and "recorded in the ledger" in run.stderr
    assert {fn: shop.alias("prod", fn)["FunctionVersion"] for fn in FUNCTIONS} == before
    if registry == "reachable":
        assert shop.ledger("prod") == ledger_before


@pytest.mark.parametrize("cut", ["missing bucket", "unreachable s3"])
def test_rollback_works_with_only_the_target_account_reachable(shop, monkeypatch, relay_cli, cut):
    first = two_releases_in_prod(shop)
    ledger_before = shop.ledger("prod")
    if cut == "missing bucket":
        shop.config.write_text(shop.config.read_text().replace('bucket = "relay-artifacts"', 'bucket = "no-such-bucket"'))
    else:
        # Every S3 call goes to a closed port: the registry (and the build system) are down.
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    run = relay_cli("rollback", "--env", "prod", "--json", cwd=shop.root)

    assert run.code == 0, run.stderr
    doc = run.json()
    assert doc["ledger_written"] is False and doc["ledger_problem"]
    assert {f["note"] for f in doc["plan"]["functions"]} == {"from the alias description"}
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    for fn in FUNCTIONS:
        alias = shop.alias("prod", fn)
        assert alias["FunctionVersion"] == first[fn]
        assert json.loads(alias["Description"])["version"] == "1.0.0"
    assert shop.ledger("prod") == ledger_before


def test_rollback_twice_walks_back_two_promotions_not_back_and_forth(shop):
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    shop.set_code("orders", "b")
    shop.publish("1.1.0")
    shop.promote("1.1.0", "staging")
    shop.set_code("orders", "c")
    shop.publish("1.2.0")
    shop.promote("1.2.0", "staging")
    assert shop.alias("staging", "orders")["FunctionVersion"] == "3"

    rollback(shop, "staging")
    assert shop.alias("staging", "orders")["FunctionVersion"] == "2"
    rollback(shop, "staging")
    assert shop.alias("staging", "orders")["FunctionVersion"] == "1"
    with pytest.raises(NotFound):
        rollback(shop, "staging")  # nothing before 1.0.0


def test_offline_rollback_twice_also_walks_back(shop):
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    for variant, version in (("b", "1.1.0"), ("c", "1.2.0")):
        shop.set_code("orders", variant)
        shop.publish(version)
        shop.promote(version, "staging")
    shop.config.write_text(shop.config.read_text().replace('bucket = "relay-artifacts"', 'bucket = "no-such-bucket"'))

    rollback(shop, "staging")
    assert shop.alias("staging", "orders")["FunctionVersion"] == "2"
    rollback(shop, "staging")
    assert shop.alias("staging", "orders")["FunctionVersion"] == "1"


def test_rollback_to_a_named_release_with_and_without_the_registry(shop):
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    shop.set_code("orders", "b")
    shop.publish("1.1.0")
    shop.promote("1.1.0", "staging")
    shop.set_code("orders", "c")
    shop.publish("1.2.0")
    shop.promote("1.2.0", "staging")

    to_first = rollback(shop, "staging", to="1.0.0")
    assert shop.alias("staging", "orders")["FunctionVersion"] == "1"
    assert to_first.plan.to_version == "1.0.0"
    # billing and notify never changed: their one version holds 1.0.0's bytes, and they stay on it.
    assert {f.function: f.action for f in to_first.plan.functions}["billing"] == "unchanged"

    shop.config.write_text(shop.config.read_text().replace('bucket = "relay-artifacts"', 'bucket = "no-such-bucket"'))
    rollback(shop, "staging", to="1.1.0", only=("orders",))
    assert shop.alias("staging", "orders")["FunctionVersion"] == "2"


def test_rollback_refuses_a_version_whose_code_is_not_what_its_description_says(shop):
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    shop.set_code("orders", "b")
    shop.publish("1.1.0")
    shop.promote("1.1.0", "staging")
    # Someone publishes a version by hand carrying 1.0.0's description but other code, and points history at it.
    lam = shop.lam("staging")
    real = lam.get_function_configuration(FunctionName="shop-orders", Qualifier="1")
    lam.update_function_code(FunctionName="shop-orders", ZipFile=b"PK\x05\x06" + b"\0" * 18)
    forged = lam.publish_version(FunctionName="shop-orders", Description=real["Description"])["Version"]
    alias = shop.alias("staging", "orders")
    mark = json.loads(alias["Description"])
    mark["previous"] = forged
    lam.update_alias(FunctionName="shop-orders", Name="live", Description=json.dumps(mark))
    shop.config.write_text(shop.config.read_text().replace('bucket = "relay-artifacts"', 'bucket = "no-such-bucket"'))

    with pytest.raises(VerificationFailed) as caught:
        rollback(shop, "staging", only=("orders",))

    assert "does not match the digest its description names" in caught.value.message
    assert shop.alias("staging", "orders")["FunctionVersion"] == "2"


def test_a_promotion_that_died_holding_the_environment_does_not_block_the_on_call(shop, relay_cli):
    from builder.errors import RaceLost
    from builder.promote.ledger import Ledger

    first = two_releases_in_prod(shop)
    live = {fn: shop.alias("prod", fn)["FunctionVersion"] for fn in FUNCTIONS}
    # A promotion that opened the ledger (signed, as relay's runs are) and died: its lease still runs for 30 minutes.
    project = shop.project()
    Ledger(shop.store(), "shop", "prod", clock=shop.clock.now, signer=open_signer(project, shop.store())).open(
        event="promote", actor="arn:aws:sts::333333333333:assumed-role/ci/crashed", from_version="1.1.0",
        to_version="1.2.0", changes=())

    with pytest.raises(RaceLost) as blocked:
        rollback(shop)
    assert "--force --reason" in blocked.value.hint
    assert live != first

    # The hinted recovery keeps what the last succeeded run made live (1.1.0), not the release before it (issue 11),
    # and takes the dead run's lock over, so it no longer shows as running.
    result = rollback(shop, force=True, reason="the 1.2.0 promotion died")
    assert result.status == "unchanged" and result.record is not None
    assert {fn: shop.alias("prod", fn)["FunctionVersion"] for fn in FUNCTIONS} == live
    taken = [r for r in shop.ledger("prod") if r["event"] == "rollback" and r["status"] == "started"][-1]
    assert taken["forced"] is True and taken["supersedes"] is not None
    assert taken["reason"] == "the 1.2.0 promotion died"
    assert rollback(shop).status == "succeeded"  # and a plain rollback afterwards goes back to 1.0.0
    assert {fn: shop.alias("prod", fn)["FunctionVersion"] for fn in FUNCTIONS} == first
