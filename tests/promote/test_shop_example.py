"""examples/shop, built for real (pydantic from the index), published, promoted to staging then prod (network)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from promote_helpers import BUCKET, Shop

from builder.registry.signing import generate_key_file

pytestmark = [pytest.mark.network, pytest.mark.slow]

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
FUNCTIONS = ("billing", "notify", "orders")

DEPLOYMENT = """
[registry]
bucket = "{bucket}"
prefix = "relay"
region = "us-east-1"
role = "{registry_role}"

[registry.signing]
kind = "ed25519"
key = "keys/relay.key"

[[registry.trusted_keys]]
keyid = "{keyid}"
public_key = "keys/relay.key.pub"

[environments.staging]
account = "222222222222"
region = "us-east-1"
role = "arn:aws:iam::222222222222:role/relay-deployer"

[environments.prod]
account = "333333333333"
region = "us-east-1"
role = "arn:aws:iam::333333333333:role/relay-deployer"
requires = "staging"
soak = "30m"
"""


@pytest.fixture(scope="module")
def wheel_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shop-cache")


@pytest.fixture
def example(aws, tmp_path, monkeypatch, wheel_cache) -> Shop:
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(wheel_cache))
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns("dist", "__pycache__", ".relay"))
    key = generate_key_file(root / "keys" / "relay.key")
    text = (root / "relay.toml").read_text()
    text = text[: text.index("[registry]")]
    text = re.sub(r"(?m)^role = .*\n", "", text)  # whatever the example says, the tests' accounts have relay-exec
    text = re.sub(r'(handler = "[^"]+"\n)', r'\1role = "arn:aws:iam::{account}:role/relay-exec"\n', text)
    text += DEPLOYMENT.format(bucket=BUCKET, registry_role=aws.role_arn("registry"), keyid=key.keyid)
    (root / "relay.toml").write_text(text)
    aws.client("registry", "s3").create_bucket(Bucket=BUCKET)
    for env in ("staging", "prod"):
        aws.client(env, "iam").create_role(RoleName="relay-exec", AssumeRolePolicyDocument="{}")
    return Shop(root, key, aws)


def test_examples_shop_promotes_the_same_bytes_to_staging_and_prod(example):
    shop = example
    shop.publish("1.0.0")
    release = shop.release("1.0.0")

    shop.promote("1.0.0", "staging")
    shop.clock.advance(31 * 60)
    shop.promote("1.0.0", "prod")

    for env in ("staging", "prod"):
        for fn in FUNCTIONS:
            assert shop.live_code(env, fn) == release["functions"][fn]["code_sha256"]
            config = shop.version_config(env, fn, "live")
            assert [layer["Arn"].split(":")[4] for layer in config["Layers"]] == [shop.aws.account(env)]
        assert shop.version_config(env, "billing", "live")["Architectures"] == ["arm64"]
    assert shop.lam("registry").list_functions()["Functions"] == []

    handler = shop.root / "functions/orders/orders/handler.py"
    handler.write_text(handler.read_text() + "\n# 1.1.0: a comment is enough to change the bytes\n")
    shop.publish("1.1.0")
    result = shop.promote("1.1.0", "staging")

    assert {f.function: f.action for f in result.plan.functions} == {
        "orders": "deploy", "billing": "unchanged", "notify": "unchanged"}
    assert {fn: len(shop.versions("staging", fn)) for fn in FUNCTIONS} == {"orders": 2, "billing": 1, "notify": 1}
    assert json.loads(shop.alias("staging", "orders")["Description"])["version"] == "1.1.0"
