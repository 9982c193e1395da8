"""Who owns what: a function infrastructure code created (manage = "code"), and configuration drift in `relay status`.

The function is made beforehand with boto3, as CloudFormation/CDK/SAM/Terraform
would: its own environment variables, memory, timeout and an SQS trigger.
relay then changes its code, versions and alias only.
"""

from __future__ import annotations

import io
import json
import zipfile

import attrs
import pytest

from builder.commands.render.status import status_summary
from builder.errors import NotFound
from builder.promote.factory import run_rollback, run_status
from builder.promote.rollback import RollbackRequest

CODE_ONLY = '\n[environments.staging.functions.orders]\nmanage = "code"\n'
IAC_ENVIRONMENT = {"TABLE_NAME": "orders-table-abc123", "OWNER": "cdk"}


class RecordingLambda:
    """The real Lambda seam, remembering which functions each write was made for."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.calls: list[tuple[str, str]] = []

    def __getattr__(self, name):
        real = getattr(self._inner, name)
        if name not in {"create_function", "update_configuration", "update_code", "publish_version",
                        "create_alias", "update_alias"}:
            return real

        def call(function_name, *args, **kwargs):
            self.calls.append((name, function_name))
            return real(function_name, *args, **kwargs)

        return call


def iac_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("orders/handler.py", "def handle(event, context):\n    return 'deployed by the stack'\n")
    return buffer.getvalue()


def create_like_iac(shop) -> str:
    """shop-orders in staging as infrastructure code makes it (with a queue that triggers it); the queue's ARN."""
    lam = shop.lam("staging")
    lam.create_function(FunctionName="shop-orders", Runtime="python3.12", Role="arn:aws:iam::222222222222:role/relay-exec",
                        Handler="orders.handler.handle", Code={"ZipFile": iac_zip()}, MemorySize=1024, Timeout=30,
                        Environment={"Variables": IAC_ENVIRONMENT})
    sqs = shop.client("staging", "sqs")
    url = sqs.create_queue(QueueName="orders-queue")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="shop-orders", BatchSize=5)
    return queue_arn


@pytest.fixture
def adopted(shop):
    shop.staging_extra = CODE_ONLY
    shop.write_config()
    queue_arn = create_like_iac(shop)
    shop.publish("1.0.0")
    return shop, queue_arn


def test_promote_changes_only_code_versions_and_alias_of_a_function_owned_by_infrastructure_code(adopted, relay_cli):
    shop, queue_arn = adopted
    lam = shop.lam("staging")
    access = shop.access("staging")
    recording = RecordingLambda(access.lam)

    dry = relay_cli("promote", "1.0.0", "--to", "staging", "--dry-run", cwd=shop.root)
    result = shop.promote("1.0.0", "staging", access=attrs.evolve(access, lam=recording))

    assert dry.code == 0, dry.stderr
    assert 'Configuration owned by infrastructure code (manage = "code"): orders' in dry.stdout
    assert result.status == "succeeded"
    assert {f.function: f.manage for f in result.plan.functions} == {"orders": "code", "billing": "all", "notify": "all"}
    orders_calls = [call for call, name in recording.calls if name == "shop-orders"]
    assert "update_configuration" not in orders_calls and "create_function" not in orders_calls
    assert orders_calls[:2] == ["update_code", "publish_version"] and orders_calls[-1] == "create_alias"
    # relay created and configured the functions it owns
    assert ("create_function", "shop-billing") in recording.calls
    # Every value the other tool set is intact, on $LATEST and on the version the alias serves.
    release = shop.release("1.0.0")
    for qualifier in ("$LATEST", "live"):
        config = shop.version_config("staging", "orders", qualifier)
        assert config["MemorySize"] == 1024 and config["Timeout"] == 30
        assert config["Environment"]["Variables"] == IAC_ENVIRONMENT
        assert config["Handler"] == "orders.handler.handle"
        assert config["CodeSha256"] == release["functions"]["orders"]["code_sha256"]
        assert not config.get("Layers")  # relay's layer is not attached to a function it does not configure
    mappings = lam.list_event_source_mappings(FunctionName="shop-orders")["EventSourceMappings"]
    assert [(m["EventSourceArn"], m["BatchSize"]) for m in mappings] == [(queue_arn, 5)]
    # The configuration relay does own (billing, manage = "all") comes from the release.
    assert shop.version_config("staging", "billing", "live")["Layers"]

    again = shop.promote("1.0.0", "staging")
    assert again.status == "unchanged"


def test_status_of_a_function_owned_by_iac_has_no_configuration_drift_but_its_code_drifts(adopted, relay_cli):
    shop, _ = adopted
    shop.promote("1.0.0", "staging")
    lam = shop.lam("staging")
    lam.update_function_configuration(FunctionName="shop-orders", MemorySize=2048)  # the stack changed it

    report = run_status(shop.project(), "staging")
    orders = {f.function: f for f in report.environments[0].functions}["orders"]

    assert orders.manage == "code" and not orders.config_drift and not orders.drifted
    assert "owned by IaC" in status_summary(report)
    assert relay_cli("status", "--env", "staging", "--check", cwd=shop.root).code == 0

    lam.update_function_code(FunctionName="shop-orders", ZipFile=iac_zip())  # code changed outside relay
    run = relay_cli("status", "--env", "staging", "--check", cwd=shop.root)

    assert run.code == 14, run.stderr
    assert "staging/orders" in run.stderr
    assert "$LATEST holds code relay never published" in run.stdout
    assert "relay rollback --env staging --to 1.0.0" in run.stdout + run.stderr
    doc = json.loads(relay_cli("status", "--env", "staging", "--json", cwd=shop.root).stdout)
    row = {f["function"]: f for f in doc["environments"][0]["functions"]}["orders"]
    assert row["config_owner"] == "infrastructure code" and row["config_drift"] == [] and row["drifted"]

    # The hint's command clears it: $LATEST gets the live version's code back, the stack's configuration stays.
    run_rollback(shop.project(), "staging", RollbackRequest(to="1.0.0"), clock=shop.clock)
    assert relay_cli("status", "--env", "staging", "--check", cwd=shop.root).code == 0
    assert shop.version_config("staging", "orders", "$LATEST")["MemorySize"] == 2048


def test_relay_refuses_to_create_a_function_infrastructure_code_owns(shop, relay_cli):
    shop.staging_extra = CODE_ONLY
    shop.write_config()
    shop.publish("1.0.0")

    with pytest.raises(NotFound) as caught:
        shop.promote("1.0.0", "staging")

    assert "shop-orders does not exist in staging" in caught.value.message
    assert 'environments.staging.functions.orders.manage = "all"' in caught.value.hint
    assert shop.function_names("staging") == []  # nothing was created, not even the functions relay owns
    run = relay_cli("promote", "1.0.0", "--to", "staging", cwd=shop.root)
    assert run.code == 12 and "manage" in run.stderr


def test_memory_changed_by_hand_is_configuration_drift_and_the_hint_clears_it(shop, relay_cli):
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    shop.lam("staging").update_function_configuration(FunctionName="shop-billing", MemorySize=512)

    report = run_status(shop.project(), "staging")
    rows = {f.function: f for f in report.environments[0].functions}

    assert report.drifted
    assert [(d.where, d.setting, d.found, d.wanted) for d in rows["billing"].config_drift] == [
        ("$LATEST", "memory", 512, 128)]
    assert not rows["orders"].drifted and not rows["notify"].drifted
    run = relay_cli("status", "--env", "staging", "--check", cwd=shop.root)
    assert run.code == 14
    assert "$LATEST memory is 512, the release says 128" in run.stdout
    assert "hint: `relay rollback --env staging --to 1.0.0` puts $LATEST back" in run.stderr
    assert relay_cli("status", "--env", "staging", cwd=shop.root).code == 14  # drift exits 14 with or without --check

    rolled = relay_cli("rollback", "--env", "staging", "--to", "1.0.0", cwd=shop.root)

    assert rolled.code == 0, rolled.stderr
    assert "$LATEST put back" in rolled.stdout and "billing (settings of version 1)" in rolled.stdout
    assert shop.version_config("staging", "billing", "$LATEST")["MemorySize"] == 128
    assert relay_cli("status", "--env", "staging", "--check", cwd=shop.root).code == 0
