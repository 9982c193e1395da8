"""AWS profiles: an environment's `profile`, `--profile`, AWS_PROFILE, and errors that name the profile (moto).

A config and a credentials file in tmp hold two profiles whose static keys
belong to IAM users of different moto accounts (staging, prod), so which
profile a session started from shows in who STS says its base caller is.
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from builder.aws.credentials import StaticCredentials
from builder.aws.session import AwsTarget, open_session
from builder.aws.sts import base_caller
from builder.commands.options import with_aws_options
from builder.config import load_project
from builder.errors import AwsError
from builder.promote.factory import connect
from builder.registry.factory import registry_target


@pytest.fixture
def profiles(aws, workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Profiles staging-sso and prod-sso (static keys of a user in each account); their users' ARNs by profile."""
    config, credentials = tmp_path / "aws-config", tmp_path / "aws-credentials"
    arns: dict[str, str] = {}
    config_text, credentials_text = "", ""
    for env in ("staging", "prod"):
        iam = aws.client(env, "iam")
        user = iam.create_user(UserName=f"{env}-person")["User"]
        key = iam.create_access_key(UserName=f"{env}-person")["AccessKey"]
        name = f"{env}-sso"
        arns[name] = user["Arn"]
        config_text += f"[profile {name}]\nregion = {aws.region}\n\n"
        credentials_text += (f"[{name}]\naws_access_key_id = {key['AccessKeyId']}\n"
                             f"aws_secret_access_key = {key['SecretAccessKey']}\n\n")
    config.write_text(config_text, encoding="utf-8")
    credentials.write_text(credentials_text, encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    text = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_text(text.replace("[environments.prod]\n", '[environments.prod]\nprofile = "prod-sso"\n'),
                                encoding="utf-8")
    return arns


def base_of(project, env: str) -> str | None:
    access = connect(project, env, environ={})
    assert access.identity.account == access.env.account  # the role was assumed from that profile, into its account
    who = access.actor.who
    assert who is not None
    return who.base_arn


def default_caller(aws) -> str:
    return boto3.client("sts", region_name=aws.region).get_caller_identity()["Arn"]


def test_an_environment_with_a_profile_reaches_its_account_from_that_profile(aws, workspace, profiles):
    project = load_project(workspace.config)

    assert project.environments["prod"].profile == "prod-sso"
    assert base_of(project, "prod") == profiles["prod-sso"]
    assert ":iam::333333333333:user/prod-person" in profiles["prod-sso"]
    assert base_of(project, "staging") == default_caller(aws)  # no profile: the default chain


def test_profile_precedence_environment_then_option_then_aws_profile(aws, workspace, profiles, monkeypatch):
    written = load_project(workspace.config)
    with_option = with_aws_options(written, profile="staging-sso", region=None)

    # --profile fills in the environments that name none; prod's own profile wins.
    assert base_of(with_option, "staging") == profiles["staging-sso"]
    assert base_of(with_option, "prod") == profiles["prod-sso"]

    # AWS_PROFILE applies when neither names one (without exported keys, which botocore would read first) ...
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_PROFILE", "prod-sso")
    assert base_of(written, "staging") == profiles["prod-sso"]
    # ... and --profile beats it.
    assert base_of(with_option, "staging") == profiles["staging-sso"]


def test_region_option_fills_only_what_the_config_leaves_out(workspace):
    project = load_project(workspace.config)

    changed = with_aws_options(project, profile=None, region="eu-west-1")

    assert changed.environments == project.environments  # an environment's region always wins
    expected = project.registry.region or "eu-west-1"
    assert changed.registry is not None and changed.registry.region == expected


def test_the_local_sandbox_consults_no_profile():
    target = AwsTarget(region="us-east-1", profile="prod-sso")

    assert target.at_endpoint("http://127.0.0.1:1", StaticCredentials("key", "secret"), "us-east-1").profile is None


def test_unknown_profiles_are_named(aws, workspace, profiles, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "nope")
    versions = workspace.relay("versions")
    monkeypatch.delenv("AWS_PROFILE")
    rollback = workspace.relay("--profile", "also-nope", "rollback", "--env", "staging")

    assert versions.returncode == 11, versions.stderr
    assert "AWS profile 'nope' not found" in versions.stderr
    assert "aws configure list-profiles" in versions.stderr
    assert rollback.returncode == 11, rollback.stderr
    assert "AWS profile 'also-nope' not found" in rollback.stderr


def test_an_sso_profile_without_a_login_says_how_to_log_in(aws, workspace, tmp_path, monkeypatch):
    config = tmp_path / "sso-config"
    config.write_text("[profile prod-sso]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n"
                      "sso_account_id = 333333333333\nsso_role_name = Deployer\nregion = us-east-1\n", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("HOME", str(tmp_path))  # no SSO token cache of the machine running the tests
    text = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_text(text.replace("[environments.prod]\n", '[environments.prod]\nprofile = "prod-sso"\n'),
                                encoding="utf-8")

    with pytest.raises(AwsError) as failed:
        connect(load_project(workspace.config), "prod", environ={})

    assert "AWS profile 'prod-sso': no valid SSO login" in failed.value.message
    assert failed.value.hint == "Run `aws sso login --profile prod-sso`, then rerun."


def test_the_registry_reaches_its_account_from_its_profile(aws, workspace, profiles):
    text = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_text(text.replace("[registry]\n", '[registry]\nprofile = "staging-sso"\n', 1),
                                encoding="utf-8")
    project = load_project(workspace.config)

    assert project.registry is not None and project.registry.profile == "staging-sso"
    assert base_caller(open_session(registry_target(project))).arn == profiles["staging-sso"]
    # --profile fills the registry's profile only where relay.toml names none.
    assert with_aws_options(project, profile="prod-sso", region=None).registry.profile == "staging-sso"
    workspace.config.write_text(text, encoding="utf-8")
    unnamed = with_aws_options(load_project(workspace.config), profile="prod-sso", region=None)
    assert base_caller(open_session(registry_target(unnamed))).arn == profiles["prod-sso"]
