"""`relay iam-policy`: well-formed, least-privilege documents scoped to the app's names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder.config import load_project
from builder.iam_policy import iam_policies

RELAY = Path(sys.executable).with_name("relay")
CONFIG = """\
[app]
name = "shop"
runtime = "python3.12"

[functions.orders]
source = "functions/orders"
handler = "orders.handler.handle"
layers = ["common"]
role = "arn:aws:iam::{account}:role/shop-orders-exec"

[functions.billing]
source = "functions/billing"
handler = "billing.handler.handle"
function_name = "shop-billing-v2"
layers = ["common"]

[layers.common]
packages = ["libs/shared"]

[registry]
bucket = "relay-artifacts"
prefix = "relay"
region = "us-east-1"
role = "arn:aws:iam::111111111111:role/relay-publisher"
{signing}

[environments.staging]
account = "222222222222"
region = "us-east-1"
role = "relay-deployer"

[environments.prod]
account = "333333333333"
region = "eu-west-1"
role = "arn:aws:iam::333333333333:role/relay-deployer"
requires = "staging"
alarms = ["shop-errors"]
deploy_bucket = "shop-prod-deploy"
"""
KMS = '[registry.signing]\nkind = "kms"\nkey_id = "alias/relay-signing"'
WRITES = {"s3:PutObject", "s3:AbortMultipartUpload", "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
          "lambda:PublishVersion", "lambda:CreateAlias", "lambda:UpdateAlias", "lambda:CreateFunction",
          "lambda:PublishLayerVersion", "iam:PassRole", "kms:Sign", "lambda:PutProvisionedConcurrencyConfig",
          "lambda:DeleteProvisionedConcurrencyConfig"}
# Reads that IAM authorises on no resource type: the only actions allowed on Resource "*".
RESOURCELESS_READS = {"lambda:ListEventSourceMappings"}


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    for folder in ("functions/orders", "functions/billing", "libs/shared"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "relay.toml").write_text(CONFIG.replace("{signing}", KMS), encoding="utf-8")
    return tmp_path


def statements(document: dict) -> dict[str, dict]:
    return {s["Sid"]: s for s in document["Statement"]}


def assert_well_formed(document: dict) -> None:
    assert document["Version"] == "2012-10-17"
    assert isinstance(document["Statement"], list) and document["Statement"]
    sids = [s["Sid"] for s in document["Statement"]]
    assert len(sids) == len(set(sids)) and all(sid.isalnum() for sid in sids)
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        assert statement["Action"] and all(":" in a and "*" not in a for a in statement["Action"])
        if statement["Resource"] == ["*"]:
            assert set(statement["Action"]) <= RESOURCELESS_READS, statement
            continue
        assert statement["Resource"] and all(r.startswith("arn:aws:") for r in statement["Resource"])
        assert "*" not in statement["Resource"]
        if WRITES & set(statement["Action"]):
            assert not any(r.endswith(":*") and r.count(":") < 6 for r in statement["Resource"]), statement


def test_publisher_writes_the_registry_prefix_but_never_the_ledger(project_dir):
    (doc,) = iam_policies(load_project(project_dir / "relay.toml"), "publisher")

    assert (doc.kind, doc.account, doc.attach_to) == (
        "identity", "111111111111", "arn:aws:iam::111111111111:role/relay-publisher")
    assert_well_formed(doc.document)
    found = statements(doc.document)
    write = found["RegistryWrite"]
    assert "s3:PutObject" in write["Action"]
    assert "arn:aws:s3:::relay-artifacts/relay/blobs/sha256/*" in write["Resource"]
    assert all(r.startswith("arn:aws:s3:::relay-artifacts/relay/") for r in write["Resource"])
    assert not any("ledger" in r or r.endswith("/shop/*") for r in write["Resource"])
    listing = found["RegistryList"]
    assert listing["Resource"] == ["arn:aws:s3:::relay-artifacts"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["relay/shop/*", "relay/blobs/*"]}}
    sign = found["SignReleases"]
    assert sign["Action"] == ["kms:GetPublicKey", "kms:Sign"]
    assert sign["Resource"] == ["arn:aws:kms:us-east-1:111111111111:key/*"]
    assert sign["Condition"] == {"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/relay-signing"]}}


def test_publisher_without_kms_has_no_kms_statement(project_dir):
    (project_dir / "relay.toml").write_text(CONFIG.replace("{signing}", ""), encoding="utf-8")
    (doc,) = iam_policies(load_project(project_dir / "relay.toml"), "publisher")
    assert not any(a.startswith("kms:") for s in doc.document["Statement"] for a in s["Action"])


def test_deployer_is_scoped_to_the_apps_functions_layers_alarms_and_ledger(project_dir):
    project = load_project(project_dir / "relay.toml")

    staging, prod, bucket = iam_policies(project, "deployer")

    for doc in (staging, prod, bucket):
        assert_well_formed(doc.document)
    assert staging.attach_to == "arn:aws:iam::222222222222:role/relay-deployer"
    found = statements(prod.document)
    lam = "arn:aws:lambda:eu-west-1:333333333333"
    assert found["PromoteFunctions"]["Resource"] == [
        f"{lam}:function:shop-billing-v2", f"{lam}:function:shop-billing-v2:*",
        f"{lam}:function:shop-orders", f"{lam}:function:shop-orders:*"]
    promoting = {"lambda:UpdateFunctionCode", "lambda:PublishVersion", "lambda:UpdateAlias"}
    assert promoting <= set(found["PromoteFunctions"]["Action"])
    # Only orders has an execution role in the config, so only orders may be created, passing that role.
    assert found["CreateFunctions"]["Resource"] == [f"{lam}:function:shop-orders"]
    assert found["PassExecutionRoles"]["Resource"] == ["arn:aws:iam::333333333333:role/shop-orders-exec"]
    assert found["PassExecutionRoles"]["Condition"] == {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
    assert found["PublishLayers"]["Resource"] == [f"{lam}:layer:shop-common", f"{lam}:layer:shop-common:*"]
    assert found["ReadAlarms"] == {"Sid": "ReadAlarms", "Effect": "Allow", "Action": ["cloudwatch:DescribeAlarms"],
                                   "Resource": ["arn:aws:cloudwatch:eu-west-1:333333333333:alarm:shop-errors"]}
    assert found["LedgerAppend"]["Resource"] == ["arn:aws:s3:::relay-artifacts/relay/shop/ledger/prod/*"]
    assert found["DeployBucket"]["Resource"] == ["arn:aws:s3:::shop-prod-deploy/*"]
    staging_found = statements(staging.document)
    assert "ReadAlarms" not in staging_found and "DeployBucket" not in staging_found
    assert staging_found["LedgerAppend"]["Resource"] == ["arn:aws:s3:::relay-artifacts/relay/shop/ledger/staging/*"]
    every = json.dumps(staging.document)
    assert "333333333333" not in every and "eu-west-1" not in every  # staging's policy names only staging

    # The registry bucket lets each deployer read the prefix and append to its own ledger only.
    assert bucket.kind == "resource"
    bucket_found = statements(bucket.document)
    assert bucket_found["ProdLedger"]["Principal"] == {"AWS": "arn:aws:iam::333333333333:role/relay-deployer"}
    assert bucket_found["ProdLedger"]["Resource"] == ["arn:aws:s3:::relay-artifacts/relay/shop/ledger/prod/*"]
    assert bucket_found["StagingRead"]["Principal"] == {"AWS": "arn:aws:iam::222222222222:role/relay-deployer"}


def test_deployer_reads_triggers_and_keeps_off_the_configuration_of_functions_owned_by_iac(project_dir):
    """manage = "code": no UpdateFunctionConfiguration, no CreateFunction; provisioned concurrency on the alias only."""
    config = project_dir / "relay.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        'deploy_bucket = "shop-prod-deploy"\n',
        'deploy_bucket = "shop-prod-deploy"\nprovisioned_concurrency = 3\n'
        '[environments.prod.functions.orders]\nmanage = "code"\n'), encoding="utf-8")
    project = load_project(config)

    staging, prod, _ = iam_policies(project, "deployer")

    assert_well_formed(prod.document)
    found = statements(prod.document)
    lam = "arn:aws:lambda:eu-west-1:333333333333"
    assert found["PromoteFunctions"]["Resource"] == [f"{lam}:function:shop-billing-v2", f"{lam}:function:shop-billing-v2:*"]
    assert found["PromoteCodeOnly"]["Resource"] == [f"{lam}:function:shop-orders", f"{lam}:function:shop-orders:*"]
    assert "lambda:UpdateFunctionConfiguration" not in found["PromoteCodeOnly"]["Action"]
    assert {"lambda:UpdateFunctionCode", "lambda:PublishVersion", "lambda:UpdateAlias",
            "lambda:GetPolicy", "lambda:GetFunctionUrlConfig"} <= set(found["PromoteCodeOnly"]["Action"])
    assert "CreateFunctions" not in found  # orders has a role, but infrastructure code creates it in prod
    assert found["ReadEventSourceMappings"] == {"Sid": "ReadEventSourceMappings", "Effect": "Allow",
                                                "Action": ["lambda:ListEventSourceMappings"], "Resource": ["*"]}
    assert found["ProvisionedConcurrency"]["Resource"] == [f"{lam}:function:shop-billing-v2:live",
                                                           f"{lam}:function:shop-orders:live"]
    staging_found = statements(staging.document)
    assert "ProvisionedConcurrency" not in staging_found and "PromoteCodeOnly" not in staging_found
    assert "lambda:UpdateFunctionConfiguration" in staging_found["PromoteFunctions"]["Action"]


def test_aws_accepts_the_documents(project_dir, aws):
    """moto's IAM validates policy grammar (Version, Effect, Action and ARN formats) as IAM does."""
    project = load_project(project_dir / "relay.toml")
    iam = aws.client("staging", "iam")
    for doc in (*iam_policies(project, "publisher"), *iam_policies(project, "deployer")):
        if doc.kind == "identity":
            iam.create_policy(PolicyName=doc.name, PolicyDocument=json.dumps(doc.document))
    s3 = aws.client("registry", "s3")
    s3.create_bucket(Bucket="relay-artifacts")
    bucket = iam_policies(project, "deployer")[-1]
    s3.put_bucket_policy(Bucket="relay-artifacts", Policy=json.dumps(bucket.document))
    assert json.loads(s3.get_bucket_policy(Bucket="relay-artifacts")["Policy"]) == bucket.document


def test_relay_iam_policy_command(project_dir):
    def relay(*args):
        return subprocess.run([str(RELAY), "-C", str(project_dir), "iam-policy", *args], capture_output=True,
                              text=True, env=dict(os.environ), timeout=60)

    one = relay("--role", "deployer", "--env", "prod", "--json")
    shown = relay("--role", "publisher")
    wrong = relay("--role", "publisher", "--env", "prod")
    unknown = relay("--role", "deployer", "--env", "qa")

    assert one.returncode == 0, one.stderr
    names = [d["name"] for d in json.loads(one.stdout)["policies"]]
    assert names == ["relay-shop-deployer-prod", "relay-shop-registry-bucket"]
    assert shown.returncode == 0 and shown.stdout.startswith("# relay-shop-publisher: identity policy in account 111111111111")
    assert json.loads(shown.stdout.split("\n", 1)[1])["Version"] == "2012-10-17"
    assert wrong.returncode == 2
    assert unknown.returncode == 12 and "no environment named 'qa'" in unknown.stderr
