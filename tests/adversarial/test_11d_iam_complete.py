"""Issue 11, items 9 and 13: every AWS call relay makes is allowed by the policy `relay iam-policy` writes.

Publish, promote (a first promote whose alias creation fails half-way, so the
revert deletes the aliases it made; a canary reverted by an alarm; a clean
canary), rollback and status run end to end against moto while a recorder on
each session's clients notes every call: service:Operation, its parameters
(for the resource ARN and condition keys) and the run's role. A small IAM
evaluator below (Action and Resource wildcards, StringLike/StringEquals/Null
conditions, fail-closed on anything else) checks each call against the
generated publisher or deployer policy. Ledger records cannot be overwritten
under the policy: a ledger PutObject without If-None-Match is denied.
"""

from __future__ import annotations

import copy
import fnmatch
import sys
import threading
from pathlib import Path
from typing import Any

import attrs
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "promote"))

from promote_helpers import BUCKET, FailingLambda, Shop, new_shop

from builder.aws.session import RequestCounter
from builder.errors import AwsError
from builder.iam_policy import iam_policies
from builder.promote.executor import ApplyFailed, CanaryAborted
from builder.promote.factory import connect, run_rollback, run_status
from builder.promote.promoter import PromoteRequest
from builder.promote.rollback import RollbackRequest

CANARY = 'alarms = ["shop-errors"]\ncanary = { steps = [10, 50], interval = "5m" }\n'
# Calls that need no IAM permission of the caller's policy (GetCallerIdentity), or are authorised by the
# target role's trust policy rather than the caller's identity policy (AssumeRole).
NO_POLICY = {"sts:GetCallerIdentity", "sts:AssumeRole"}
# The IAM action S3 authorises a call under, where its name differs from the operation's.
S3_ACTIONS = {"HeadObject": "GetObject", "CreateMultipartUpload": "PutObject", "UploadPart": "PutObject",
              "CompleteMultipartUpload": "PutObject", "ListObjectsV2": "ListBucket", "ListObjects": "ListBucket",
              "HeadBucket": "ListBucket", "ListParts": "ListMultipartUploadParts"}
OBJECT_OPS = {"GetObject", "HeadObject", "PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
              "AbortMultipartUpload", "ListParts", "GetObjectAttributes"}


@attrs.frozen
class Call:
    role: str  # "publisher" | "deployer:<env>"
    service: str
    operation: str
    region: str
    params: dict

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"


class CallRecorder(RequestCounter):
    """A RequestCounter that also keeps each call's parameters, so the test can derive resources."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role
        self.calls: list[Call] = []
        self._calls_lock = threading.Lock()

    def register(self, client: Any) -> None:
        super().register(client)
        region = client.meta.region_name

        def keep(event_name: str = "", params: dict | None = None, **_: Any) -> None:
            _, service, operation = event_name.split(".", 2)
            with self._calls_lock:
                self.calls.append(Call(self.role, service, operation, region, dict(params or {})))

        client.meta.events.register("before-parameter-build", keep)


# -- a small IAM evaluator -------------------------------------------------------------------------------------


def request_of(call: Call, accounts: dict[str, str]) -> tuple[str, list[str], dict[str, str]]:
    """(IAM action, resource ARNs, condition context) of one recorded call."""
    p, op = call.params, call.operation
    if call.service == "s3":
        action = f"s3:{S3_ACTIONS.get(op, op)}"
        if op in OBJECT_OPS:
            context = {"s3:if-none-match": p["IfNoneMatch"]} if "IfNoneMatch" in p else {}
            return action, [f"arn:aws:s3:::{p['Bucket']}/{p['Key']}"], context
        return action, [f"arn:aws:s3:::{p['Bucket']}"], {"s3:prefix": p.get("Prefix", "")}
    account = accounts[call.role]
    if call.service == "lambda":
        base = f"arn:aws:lambda:{call.region}:{account}"
        if op == "ListEventSourceMappings":
            return "lambda:ListEventSourceMappings", ["*"], {}
        if "LayerName" in p:
            layer = f"{base}:layer:{p['LayerName']}"
            return f"lambda:{op}", [f"{layer}:{p['VersionNumber']}" if "VersionNumber" in p else layer], {}
        name = p.get("FunctionName") or p["Resource"]
        arn = name if name.startswith("arn:") else f"{base}:function:{name}"
        qualifier = p.get("Qualifier") or p.get("Name") if op not in ("CreateFunction",) else None
        return f"lambda:{op}", [f"{arn}:{qualifier}" if qualifier else arn], {}
    if call.service == "cloudwatch":
        names = p.get("AlarmNames") or []
        arns = [f"arn:aws:cloudwatch:{call.region}:{account}:alarm:{n}" for n in names] or ["*"]
        return f"cloudwatch:{op}", arns, {}
    if call.service == "kms":
        return f"kms:{op}", [p["KeyId"]], {}
    raise AssertionError(f"the evaluator does not know {call.name}: teach request_of about it")


def _matches(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


def _condition_holds(condition: dict, context: dict[str, str]) -> bool:
    for operator, tests in condition.items():
        for key, wanted in tests.items():
            wanted_list = wanted if isinstance(wanted, list) else [wanted]
            value = context.get(key)
            if operator == "Null":
                if any(str(w).lower() != str(value is None).lower() for w in wanted_list):
                    return False
            elif operator == "StringLike":
                if value is None or not any(_matches(w, value) for w in wanted_list):
                    return False
            elif operator == "StringEquals":
                if value is None or value not in wanted_list:
                    return False
            else:
                return False  # an operator this evaluator does not know: fail closed
    return True


def allowed(documents: list[dict], action: str, resources: list[str], context: dict[str, str]) -> bool:
    """Every resource is allowed `action` by some Allow statement whose condition holds (no Deny is generated)."""
    def one(resource: str) -> bool:
        for document in documents:
            for statement in document["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                listed = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                if (statement["Effect"] == "Allow"
                        and any(_matches(a.lower(), action.lower()) for a in actions)
                        and any(_matches(r, resource) for r in listed)
                        and _condition_holds(statement.get("Condition", {}), context)):
                    return True
        return False
    return all(one(r) for r in resources)


def refused(calls: list[Call], policies: dict[str, list[dict]], accounts: dict[str, str]) -> list[str]:
    """What the policies refuse; a deployer's S3 call crosses accounts, so the bucket's policy must allow it too."""
    found = []
    for call in calls:
        if call.name in NO_POLICY:
            continue
        action, resources, context = request_of(call, accounts)
        needed = [policies[call.role]]
        if call.service == "s3" and call.role.startswith("deployer:"):
            needed.append(policies[f"bucket:{call.role}"])
        if not all(allowed(documents, action, resources, context) for documents in needed):
            found.append(f"{call.role} {action} on {resources} {context or ''}".strip())
    return sorted(set(found))


# -- end to end -------------------------------------------------------------------------------------------------


@pytest.fixture
def shop(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    shop = new_shop(aws, tmp_path)
    shop.staging_extra = CANARY
    shop.write_config()
    shop.aws.client("staging", "cloudwatch").put_metric_alarm(
        AlarmName="shop-errors", MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    return shop


def run_everything(shop: Shop) -> list[Call]:
    """Publish, promote (three ways), rollback and status, each recorded under its role."""
    from builder.registry.factory import open_signer, open_store
    from builder.registry.publish import VersionRequest, publish

    publisher, deployer = CallRecorder("publisher"), CallRecorder("deployer:staging")
    project = shop.project()

    def publish_version(version: str) -> None:
        shop.build()
        store = open_store(shop.project(), counter=publisher)
        publish(shop.project(), store, open_signer(shop.project(), store), VersionRequest(version=version))

    def promote(version: str, access=None) -> None:
        access = access or connect(project, "staging", counter=deployer)
        shop.promoter("staging", access=access, store=open_store(project, counter=deployer)).promote(
            PromoteRequest(version))

    publish_version("1.0.0")
    # A first promote whose third alias cannot be created: the revert deletes the two aliases it made.
    access = connect(project, "staging", counter=deployer)
    failing = FailingLambda(access.lam, "create_alias", "shop-notify", error=AwsError("injected: alias create failed"))
    with pytest.raises(ApplyFailed):
        promote("1.0.0", attrs.evolve(access, lam=failing))
    assert any(c.operation == "DeleteAlias" for c in deployer.calls), "the revert path did not delete an alias"
    promote("1.0.0")
    shop.set_code("orders", "b")
    publish_version("1.1.0")
    cloudwatch = shop.aws.client("staging", "cloudwatch")

    def fire(clock):
        if len(clock.slept) == 1:
            cloudwatch.set_alarm_state(AlarmName="shop-errors", StateValue="ALARM", StateReason="5xx spike")

    shop.clock.on_sleep.append(fire)
    with pytest.raises(CanaryAborted):
        promote("1.1.0")  # an alarm mid-canary: the alias is moved back
    shop.clock.on_sleep.clear()
    cloudwatch.set_alarm_state(AlarmName="shop-errors", StateValue="OK", StateReason="quiet")
    promote("1.1.0")
    run_rollback(project, "staging", RollbackRequest(), counter=deployer, clock=shop.clock)
    run_status(project, "staging", counter=deployer)
    return publisher.calls + deployer.calls


def generated(shop: Shop) -> dict[str, list[dict]]:
    project = shop.project()
    documents = iam_policies(project, "deployer", env="staging")
    deployer = [d.document for d in documents if d.kind == "identity"]
    bucket = [d.document for d in documents if d.kind == "resource"]
    assert len(bucket) == 1 and all(s["Principal"] for s in bucket[0]["Statement"])
    return {"publisher": [iam_policies(project, "publisher")[0].document], "deployer:staging": deployer,
            "bucket:deployer:staging": bucket}


def test_every_call_of_publish_promote_revert_rollback_and_status_is_allowed_by_the_generated_policy(shop):
    accounts = {"publisher": "111111111111", "deployer:staging": "222222222222"}
    calls = run_everything(shop)
    policies = generated(shop)
    names = {c.name for c in calls}
    assert {"lambda:DeleteAlias", "lambda:UpdateAlias", "cloudwatch:DescribeAlarms", "s3:PutObject"} <= names

    assert refused(calls, policies, accounts) == []

    # Ledger writes were all conditional, and an overwrite (no If-None-Match) is refused by the policy.
    ledger = [c for c in calls if c.operation == "PutObject" and "/ledger/" in c.params["Key"]]
    assert ledger and all(c.params.get("IfNoneMatch") == "*" for c in ledger)
    overwrite = attrs.evolve(ledger[0], params={k: v for k, v in ledger[0].params.items() if k != "IfNoneMatch"})
    assert refused([overwrite], policies, accounts) != []
    lax_bucket = copy.deepcopy(policies)
    for statement in lax_bucket["bucket:deployer:staging"][0]["Statement"]:
        if statement["Sid"].endswith("Ledger"):
            del statement["Condition"]
    assert refused([overwrite], lax_bucket, accounts) != []  # the identity policy alone refuses it too

    # Without lambda:DeleteAlias the revert path would be refused on real AWS, and this check says so.
    crippled = copy.deepcopy(policies)
    for statement in crippled["deployer:staging"][0]["Statement"]:
        if isinstance(statement["Action"], list) and "lambda:DeleteAlias" in statement["Action"]:
            statement["Action"].remove("lambda:DeleteAlias")
    assert [r for r in refused(calls, crippled, accounts) if "lambda:DeleteAlias" in r]


def test_the_evaluator_refuses_what_the_policy_does_not_name():
    policy = [{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": [f"arn:aws:s3:::{BUCKET}/relay/shop/ledger/staging/*"],
         "Condition": {"Null": {"s3:if-none-match": "false"}}},
        {"Effect": "Allow", "Action": ["lambda:Get*"], "Resource": ["arn:aws:lambda:us-east-1:2:function:shop-orders"]},
    ]}]
    ledger = f"arn:aws:s3:::{BUCKET}/relay/shop/ledger/staging/0001.json"
    assert allowed(policy, "s3:PutObject", [ledger], {"s3:if-none-match": "*"})
    assert not allowed(policy, "s3:PutObject", [ledger], {})
    assert not allowed(policy, "s3:PutObject", [f"arn:aws:s3:::{BUCKET}/relay/shop/ledger/prod/0001.json"],
                       {"s3:if-none-match": "*"})
    assert allowed(policy, "lambda:GetAlias", ["arn:aws:lambda:us-east-1:2:function:shop-orders"], {})
    assert not allowed(policy, "lambda:DeleteAlias", ["arn:aws:lambda:us-east-1:2:function:shop-orders"], {})
    assert not allowed(policy, "lambda:GetAlias", ["arn:aws:lambda:us-east-1:2:function:shop-billing"], {})
