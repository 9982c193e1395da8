"""Per-environment values in relay.toml: overrides, placeholders, manage, provisioned concurrency, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.config import load_project
from builder.errors import ConfigError, LimitExceeded
from builder.settings import settings_in_environment

BASE = """\
[app]
name = "shop"
runtime = "python3.12"

[functions.orders]
source = "src"
handler = "app.orders.handle"
memory = 256
environment = {{ TABLE_NAME = "orders", LOG_LEVEL = "INFO" }}
layers = {layers}

[layers.common]
packages = ["libs"]

[environments.staging]
account = "222222222222"
region = "eu-west-1"
manage = "code"
provisioned_concurrency = 2

[environments.staging.settings]
memory = 512
environment = {{ TABLE_NAME = "{{app}}-orders-{{env}}" }}

[environments.staging.functions.orders]
timeout = 20
environment = {{ LOG_LEVEL = "DEBUG", REGION_HINT = "{{region}}/{{account}}/{{function}}" }}
manage = "all"

[environments.prod]
account = "333333333333"
region = "us-east-1"
{prod}
"""


def _project(tmp_path: Path, *, layers: str = '["common"]', prod: str = ""):
    (tmp_path / "src" / "app").mkdir(parents=True, exist_ok=True)
    (tmp_path / "libs").mkdir(exist_ok=True)
    config = tmp_path / "relay.toml"
    config.write_text(BASE.format(layers=layers, prod=prod), encoding="utf-8")
    return load_project(config)


def test_an_environment_overrides_settings_for_every_function_then_per_function_with_placeholders(tmp_path):
    project = _project(tmp_path)
    staging, prod = project.environment("staging"), project.environment("prod")
    recorded = project.function("orders").settings

    got = settings_in_environment(recorded, staging.overrides_for("orders"), staging.placeholders("shop", "orders"))
    assert (got.memory, got.timeout) == (512, 20)
    assert dict(got.environment) == {"TABLE_NAME": "shop-orders-staging", "LOG_LEVEL": "DEBUG",
                                     "REGION_HINT": "eu-west-1/222222222222/orders"}
    unchanged = settings_in_environment(recorded, prod.overrides_for("orders"), prod.placeholders("shop", "orders"))
    assert unchanged == recorded

    assert (staging.manage_for("orders"), staging.manage_for("other"), prod.manage_for("orders")) == ("all", "code", "all")
    assert (staging.provisioned_concurrency_for("orders"), prod.provisioned_concurrency_for("orders")) == (2, None)


def test_layer_arns_sit_next_to_relay_layers_in_order_and_count_toward_the_limit(tmp_path):
    arn = "arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3:7"
    project = _project(tmp_path, layers=f'["{arn}", "common"]')
    orders = project.function("orders")
    assert orders.layers == ("common",)
    assert orders.layer_entries == (arn, "common")

    six = ", ".join(f'"arn:aws:lambda:us-east-1:111111111111:layer:l{i}:1"' for i in range(5))
    with pytest.raises(LimitExceeded, match="6 layers > 5"):
        _project(tmp_path, layers=f'["common", {six}]')


@pytest.mark.parametrize("value", [
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",  # an AWS secret access key
    "AKIAIOSFODNN7EXAMPLE",
    "postgres://app:hunter2@db.internal:5432/orders",
])
def test_a_credential_in_an_override_is_refused_with_its_key_path_and_never_echoed(tmp_path, value):
    prod = f'[environments.prod.functions.orders]\nenvironment = {{ DB_URL = "{value}" }}\n'
    with pytest.raises(ConfigError) as caught:
        _project(tmp_path, prod=prod)
    assert "environments.prod.functions.orders.environment.DB_URL" in str(caught.value)
    assert value not in str(caught.value) and value not in (caught.value.hint or "")
    assert caught.value.exit_code == 3


def test_a_secret_reference_is_accepted_and_unknown_names_are_refused(tmp_path):
    ref = "arn:aws:secretsmanager:us-east-1:333333333333:secret:db-password-AbCdEf"
    project = _project(tmp_path, prod=f'[environments.prod.settings]\nenvironment = {{ DB_PASSWORD = "{ref}" }}\n')
    assert project.environment("prod").settings["environment"] == {"DB_PASSWORD": ref}

    with pytest.raises(ConfigError, match=r"environments\.prod\.functions\.nope: unknown function"):
        _project(tmp_path, prod="[environments.prod.functions.nope]\nmemory = 256\n")
    with pytest.raises(ConfigError, match=r"unknown placeholder \{stage\}"):
        _project(tmp_path, prod='[environments.prod.settings]\nenvironment = { T = "t-{stage}" }\n')
    with pytest.raises(ConfigError, match="manage"):
        _project(tmp_path, prod='manage = "some"\n')
