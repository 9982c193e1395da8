"""A function's deployable settings: one record, compared as a whole, sent to and read back from Lambda."""

from __future__ import annotations

import textwrap

import attrs
import pytest

from builder.aws.lambda_ import settings_from_reply, settings_params
from builder.config import load_project
from builder.errors import ConfigError
from builder.settings import FunctionSettings, LayerRef, code_settings, declared_settings

SHA = "a" * 64
ARN = "arn:aws:lambda:us-east-1:222222222222:layer:shop-common:{}"


def settings(**changes) -> FunctionSettings:
    base = FunctionSettings(handler="orders.handler.handle", runtime="python3.12", architecture="arm64", memory=256,
                            timeout=10, ephemeral_storage=2048, environment={"B": "2", "A": "1"},
                            layers=[LayerRef(SHA, "arm64", ARN.format(1))], description="orders")
    return attrs.evolve(base, **changes)


def test_differences_name_every_setting_that_differs_and_only_those():
    assert settings().differences(settings()) == ()
    changed = settings(memory=512, ephemeral_storage=4096, environment={"A": "1"})
    assert changed.differences(settings()) == ("memory", "ephemeral_storage", "environment")
    # A published version's description is relay's mark, so it does not decide whether a version is reused.
    assert settings(description="other").differences(settings()) == ()


def test_layers_are_compared_by_what_they_hold_not_by_arn():
    elsewhere = settings(layers=[LayerRef(SHA, "arm64", ARN.format(7))])
    assert elsewhere.differences(settings()) == ()
    assert settings(layers=[LayerRef(SHA, "x86_64", ARN.format(1))]).differences(settings()) == ("layers",)
    unknown = settings(layers=[LayerRef.at(ARN.format(1))])  # not published by relay: identity unknown
    assert unknown.differences(settings()) == ("layers",)


def test_ephemeral_storage_must_be_what_lambda_accepts():
    assert FunctionSettings(handler="h.f", runtime="python3.12").ephemeral_storage == 512
    for size in (511, 10241):
        with pytest.raises(ValueError, match="ephemeral_storage"):
            settings(ephemeral_storage=size)


def test_the_architecture_travels_with_the_code_everything_else_with_the_configuration():
    assert code_settings() == ("architecture",)
    assert settings_params(settings(), code=True) == {"Architectures": ["arm64"]}
    sent = settings_params(settings(), configuration=True)
    assert "Architectures" not in sent
    assert sent == {
        "Handler": "orders.handler.handle", "Runtime": "python3.12", "MemorySize": 256, "Timeout": 10,
        "EphemeralStorage": {"Size": 2048}, "Environment": {"Variables": {"A": "1", "B": "2"}},
        "Layers": [ARN.format(1)], "Description": "orders", "TracingConfig": {"Mode": "PassThrough"},
        "LoggingConfig": {"LogFormat": "Text"}, "VpcConfig": {"SubnetIds": [], "SecurityGroupIds": []},
    }


def test_what_is_sent_reads_back_as_the_same_settings():
    """Every field's mapping goes both ways (a new setting that forgets one fails here)."""
    reply = {**settings_params(settings(), configuration=True, code=True), "FunctionArn": "arn", "Version": "$LATEST"}
    reply["Layers"] = [{"Arn": arn, "CodeSize": 1} for arn in reply["Layers"]]  # Lambda answers objects for the ARNs sent
    back = settings_from_reply(reply)
    assert back.differences(attrs.evolve(settings(), layers=[LayerRef.at(ARN.format(1))])) == ()
    assert back.description == "orders" and back.layers[0].arn == ARN.format(1)
    assert {field.name for field, _ in declared_settings()} == {field.name for field in attrs.fields(FunctionSettings)}


def test_a_reply_without_optional_keys_reads_as_lambdas_defaults():
    back = settings_from_reply({"Handler": "h.f", "Runtime": "python3.12"})
    assert (back.architecture, back.memory, back.timeout, back.ephemeral_storage, back.environment, back.layers) == (
        "x86_64", 128, 3, 512, (), ())


def _project(tmp_path, extra: str):
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "relay.toml").write_text(textwrap.dedent("""\
        [app]
        name = "shop"
        runtime = "python3.12"

        [functions.orders]
        source = "src"
        handler = "orders.handler.handle"
        architecture = "arm64"
        """) + extra, encoding="utf-8")
    return load_project(tmp_path / "relay.toml")


def test_the_config_produces_the_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    fn = _project(tmp_path, 'memory = 256\nephemeral_storage = 2048\nenvironment = { A = "1" }\n').functions["orders"]
    assert fn.settings == FunctionSettings(handler="orders.handler.handle", runtime="python3.12", architecture="arm64",
                                           memory=256, ephemeral_storage=2048, environment={"A": "1"})
    assert _project(tmp_path, "").functions["orders"].settings.ephemeral_storage == 512
    with pytest.raises(ConfigError, match="ephemeral_storage"):
        _project(tmp_path, "ephemeral_storage = 256\n")
