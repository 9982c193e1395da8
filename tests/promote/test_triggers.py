"""Traffic that bypasses the alias: triggers on the unqualified function, the canary check, rollback of `$LATEST`;
and the alias's provisioned concurrency.
"""

from __future__ import annotations

import json

import attrs
import pytest
from promote_helpers import Injected

from builder.errors import GateRefused, NotFound
from builder.promote.executor import ApplyFailed
from builder.promote.factory import run_rollback, run_status
from builder.promote.rollback import RollbackRequest


@pytest.fixture
def canary_shop(shop):
    shop.watch_canary()
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    shop.set_code("orders", "b")
    shop.publish("1.1.0")
    return shop


def queue_on_unqualified_orders(shop) -> str:
    """An SQS queue mapped to shop-orders without a qualifier (as a stack wires it): the queue's ARN."""
    sqs = shop.client("staging", "sqs")
    url = sqs.create_queue(QueueName="orders-queue")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    shop.lam("staging").create_event_source_mapping(EventSourceArn=arn, FunctionName="shop-orders")
    return arn


def test_triggers_on_the_unqualified_function_are_listed_and_those_on_the_alias_are_not(canary_shop, relay_cli):
    shop = canary_shop
    queue_arn = queue_on_unqualified_orders(shop)
    lam = shop.lam("staging")
    lam.add_permission(FunctionName="shop-notify", StatementId="api", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn="arn:aws:execute-api:us-east-1:222222222222:abc123/*/POST/notify")
    lam.add_permission(FunctionName="shop-billing", StatementId="on-alias", Action="lambda:InvokeFunction",
                       Principal="events.amazonaws.com", Qualifier="live")
    lam.create_function_url_config(FunctionName="shop-notify", AuthType="NONE")

    report = run_status(shop.project(), "staging")
    rows = {f.function: f for f in report.environments[0].functions}

    assert [(t.kind, t.source, t.qualifier) for t in rows["orders"].triggers] == [
        ("event source mapping", queue_arn, None)]
    assert sorted(t.kind for t in rows["notify"].triggers) == ["function URL", "permission"]
    assert rows["billing"].triggers == ()  # its permission names the alias: governed by promotion
    assert not report.drifted  # a trigger is not drift
    text = relay_cli("status", "--env", "staging", cwd=shop.root).stdout
    assert "Not governed by promotion in staging" in text and queue_arn in text

    dry = relay_cli("promote", "1.1.0", "--to", "staging", "--dry-run", cwd=shop.root)
    assert dry.code == 0, dry.stderr
    assert "Not governed by promotion in staging" in dry.stdout and queue_arn in dry.stdout
    doc = json.loads(relay_cli("promote", "1.1.0", "--to", "staging", "--dry-run", "--json", cwd=shop.root).stdout)
    assert doc["unqualified_triggers"]["orders"][0]["source"] == queue_arn
    assert {t["kind"] for t in doc["unqualified_triggers"]["notify"]} == {"function URL", "permission"}


def test_a_canary_refuses_to_start_while_a_queue_invokes_latest_and_goes_on_when_told(canary_shop, relay_cli):
    shop = canary_shop
    queue_arn = queue_on_unqualified_orders(shop)
    before = shop.version_config("staging", "orders", "$LATEST")["CodeSha256"]

    with pytest.raises(GateRefused) as caught:
        shop.promote("1.1.0", "staging")

    assert queue_arn in caught.value.message and "--allow-unqualified" in caught.value.hint
    assert shop.alias("staging", "orders")["FunctionVersion"] == "1"
    assert shop.version_config("staging", "orders", "$LATEST")["CodeSha256"] == before  # nothing uploaded
    assert shop.ledger("staging")[-1]["status"] == "refused"
    run = relay_cli("promote", "1.1.0", "--to", "staging", cwd=shop.root)
    assert run.code == 9 and "--allow-unqualified" in run.stderr

    result = shop.promote("1.1.0", "staging", allow_unqualified=True)

    assert result.status == "succeeded"
    assert shop.alias("staging", "orders")["FunctionVersion"] == "2"
    assert [t.source for t in result.triggers["orders"]] == [queue_arn]


def test_rollback_puts_the_rolled_back_code_on_latest_for_unqualified_callers(canary_shop, relay_cli):
    shop = canary_shop
    queue_on_unqualified_orders(shop)
    shop.promote("1.1.0", "staging", allow_unqualified=True)
    newer = shop.release("1.1.0")["functions"]["orders"]["code_sha256"]
    assert shop.version_config("staging", "orders", "$LATEST")["CodeSha256"] == newer

    run = relay_cli("rollback", "--env", "staging", cwd=shop.root)

    assert run.code == 0, run.stderr
    old = shop.release("1.0.0")["functions"]["orders"]["code_sha256"]
    assert shop.alias("staging", "orders")["FunctionVersion"] == "1"
    assert shop.version_config("staging", "orders", "$LATEST")["CodeSha256"] == old
    assert "$LATEST put back as well" in run.stdout and "orders (code of version 1)" in run.stdout
    assert not run_status(shop.project(), "staging").drifted

    again = run_rollback(shop.project(), "staging", RollbackRequest(to="1.0.0"), clock=shop.clock)
    assert again.status == "unchanged" and again.latest == {}  # nothing left to put back


def test_rollback_without_the_registry_says_latest_was_not_put_back_when_moto_cannot_serve_the_code(canary_shop):
    """moto hands out a Code.Location that does not exist: with the registry out of reach too, say so."""
    shop = canary_shop
    shop.promote("1.1.0", "staging")
    shop.config.write_text(shop.config.read_text().replace('bucket = "relay-artifacts"', 'bucket = "no-such-bucket"'))

    result = run_rollback(shop.project(), "staging", RollbackRequest(), clock=shop.clock)

    assert result.status == "succeeded" and shop.alias("staging", "orders")["FunctionVersion"] == "1"
    assert result.latest == {}
    assert [p for p in result.latest_problems if p.startswith("orders:") and "Code.Location" in p]


# -- provisioned concurrency ---------------------------------------------------------------------------


class ProvisionedLambda:
    """The real Lambda seam, with the alias's provisioned concurrency kept here: moto 5.2.5 has none of its calls."""

    def __init__(self, inner, *, fail_put_for: str | None = None, values: dict | None = None) -> None:
        self._inner = inner
        self.values: dict[tuple[str, str], int] = values if values is not None else {}
        self.fail_put_for = fail_put_for
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def provisioned_concurrency(self, name, alias):
        return self.values.get((name, alias))

    def put_provisioned_concurrency(self, name, alias, count):
        self.calls.append(("put", name, alias, count))
        if name == self.fail_put_for:
            raise Injected(f"provisioned concurrency refused for {name}")
        self.values[name, alias] = count

    def delete_provisioned_concurrency(self, name, alias):
        self.calls.append(("delete", name, alias))
        self.values.pop((name, alias), None)


def test_moto_has_no_provisioned_concurrency_calls(shop):
    """Why the tests below keep the values in the seam: moto 5.2.5 answers these calls with 404."""
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    lam = shop.access("staging").lam
    with pytest.raises(NotFound):
        lam.put_provisioned_concurrency("shop-orders", "live", 2)
    assert lam.provisioned_concurrency("shop-orders", "live") is None  # read as "none"


def test_provisioned_concurrency_is_set_when_the_alias_moves_and_put_back_when_the_run_is_undone(shop):
    shop.staging_extra = "provisioned_concurrency = 2\n[environments.staging.functions.orders]\nprovisioned_concurrency = 5\n"
    shop.write_config()
    shop.publish("1.0.0")
    access = shop.access("staging")
    seam = ProvisionedLambda(access.lam)

    result = shop.promote("1.0.0", "staging", access=attrs.evolve(access, lam=seam))

    assert result.status == "succeeded"
    assert seam.values == {("shop-orders", "live"): 5, ("shop-billing", "live"): 2, ("shop-notify", "live"): 2}
    moves = {f.function: f.alias.to_json()["provisioned_concurrency"] for f in result.plan.functions if f.alias}
    assert moves["orders"] == {"from": None, "to": 5}

    # The same release, provisioned concurrency changed: only the alias setting moves.
    shop.config.write_text(shop.config.read_text().replace("provisioned_concurrency = 5", "provisioned_concurrency = 8"))
    seam.calls.clear()
    access = shop.access("staging")  # the environment as relay.toml now says
    changed = shop.promote("1.0.0", "staging", access=attrs.evolve(access, lam=seam))
    assert changed.status == "succeeded"
    assert seam.calls == [("put", "shop-orders", "live", 8)]
    assert len(shop.versions("staging", "orders")) == 1

    # A new release whose run fails setting it: every alias and provisioned concurrency goes back.
    shop.set_code("orders", "b")
    shop.publish("1.1.0")
    shop.config.write_text(shop.config.read_text().replace("provisioned_concurrency = 2", "provisioned_concurrency = 3"))
    access = shop.access("staging")
    failing = ProvisionedLambda(access.lam, fail_put_for="shop-notify", values=seam.values)
    with pytest.raises(ApplyFailed):
        shop.promote("1.1.0", "staging", access=attrs.evolve(access, lam=failing))
    assert seam.values == {("shop-orders", "live"): 8, ("shop-billing", "live"): 2, ("shop-notify", "live"): 2}
    assert shop.alias("staging", "orders")["FunctionVersion"] == "1"
