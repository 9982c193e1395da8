"""Who ran it: CI run metadata read from the environment mapping given, and its place in a signed ledger record."""

from __future__ import annotations

import copy
import pickle

import attrs
import pytest

from builder import schemas
from builder.commands.render.history import who_text
from builder.promote.actor import Actor, CiRun, Who, ci_run, who_of
from builder.promote.records import LedgerRecord

GITHUB = {
    "GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octocat", "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/shop", "GITHUB_RUN_ID": "4242", "GITHUB_RUN_ATTEMPT": "2",
    "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567", "GITHUB_WORKFLOW": "release",
    "GITHUB_REF": "refs/heads/main",
    # Secrets a CI job has in its environment: none may reach a record.
    "GITHUB_TOKEN": "ghs_secret", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "secret-oidc", "AWS_SECRET_ACCESS_KEY": "secret-key",
}
GITLAB = {
    "GITLAB_CI": "true", "GITLAB_USER_LOGIN": "jdoe", "CI_PIPELINE_URL": "https://gitlab.example.com/acme/shop/-/pipelines/77",
    "CI_JOB_URL": "https://gitlab.example.com/acme/shop/-/jobs/901", "CI_COMMIT_SHA": "feedface" * 5,
    "CI_PROJECT_PATH": "acme/shop", "CI_JOB_TOKEN": "glcbt-secret", "CI_REGISTRY_PASSWORD": "secret",
}
CODEBUILD = {
    "CODEBUILD_BUILD_ID": "shop-release:1b2c", "CODEBUILD_INITIATOR": "codepipeline/shop-release",
    "CODEBUILD_BUILD_ARN": "arn:aws:codebuild:us-east-1:111111111111:build/shop-release:1b2c",
    "CODEBUILD_RESOLVED_SOURCE_VERSION": "c0ffee" * 6 + "c0ff",
    "CODEBUILD_BUILD_URL": "https://us-east-1.console.aws.amazon.com/codesuite/codebuild/projects/shop-release/build/1b2c",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/secret",
}


def test_github_actions_run_url_actor_and_commit():
    run = ci_run(GITHUB)

    assert run == CiRun("github-actions", actor="octocat",
                        run_url="https://github.com/acme/shop/actions/runs/4242/attempts/2", run_id="4242/2",
                        commit=GITHUB["GITHUB_SHA"], ref="refs/heads/main", workflow="release", project="acme/shop")
    assert run is not None and run.name == "GitHub Actions"


def test_github_without_an_attempt_links_the_run():
    env = {k: v for k, v in GITHUB.items() if k != "GITHUB_RUN_ATTEMPT"}

    run = ci_run(env)

    assert run is not None and run.run_url == "https://github.com/acme/shop/actions/runs/4242" and run.run_id == "4242"


def test_gitlab_ci_pipeline_and_job():
    assert ci_run(GITLAB) == CiRun("gitlab-ci", actor="jdoe", run_url=GITLAB["CI_PIPELINE_URL"],
                                   job_url=GITLAB["CI_JOB_URL"], commit=GITLAB["CI_COMMIT_SHA"], project="acme/shop")


def test_codebuild_build():
    assert ci_run(CODEBUILD) == CiRun("codebuild", actor="codepipeline/shop-release",
                                      run_url=CODEBUILD["CODEBUILD_BUILD_URL"], run_id=CODEBUILD["CODEBUILD_BUILD_ARN"],
                                      commit=CODEBUILD["CODEBUILD_RESOLVED_SOURCE_VERSION"])


@pytest.mark.parametrize("env", [{}, {"GITHUB_ACTIONS": "false", "GITHUB_ACTOR": "octocat"}, {"CI": "true"},
                                 {"GITLAB_CI": ""}])
def test_outside_ci_there_is_no_run(env):
    assert ci_run(env) is None


@pytest.mark.parametrize("env", [GITHUB, GITLAB, CODEBUILD])
def test_no_secret_reaches_the_record(env):
    recorded = str(Who("arn:aws:iam::111111111111:user/ci", ci_run(env)).to_json())

    assert "secret" not in recorded and "ghs_" not in recorded and "glcbt" not in recorded


def test_a_url_with_credentials_or_no_scheme_is_not_recorded():
    env = {**GITLAB, "CI_PIPELINE_URL": "https://user:pw@gitlab.example.com/p/1", "CI_JOB_URL": "gitlab/jobs/1"}

    run = ci_run(env)

    assert run is not None and run.run_url is None and run.job_url is None


def test_an_actor_is_a_str_that_carries_who():
    who = Who("arn:aws:iam::123456789012:user/alice", ci_run(GITHUB))
    actor = Actor("arn:aws:sts::222222222222:assumed-role/relay-deployer/relay-shop-staging", who)

    assert actor == "arn:aws:sts::222222222222:assumed-role/relay-deployer/relay-shop-staging"
    assert who_of(actor) == who and who_of(str(actor)) is None
    assert who_of(copy.deepcopy(actor)) == who and who_of(pickle.loads(pickle.dumps(actor))) == who


def _record(who: Who | None) -> LedgerRecord:
    return LedgerRecord(seq=1, app="shop", env="prod", event="promote", status="refused",
                        actor="arn:aws:sts::333333333333:assumed-role/relay-deployer/relay-shop-prod",
                        at="2026-11-26T19:30:00.000000Z", from_version=None, to_version="1.0.0",
                        reason="gates refused", run_id="0b6f2f64-8b0c-4a4e-9a43-5ac1d3c0e7b1", who=who)


@pytest.mark.parametrize("who", [None, Who("arn:aws:iam::123456789012:user/alice"), Who(None, ci_run(CODEBUILD)),
                                 Who("arn:aws:sts::111111111111:assumed-role/gh-oidc/GitHubActions", ci_run(GITHUB))])
def test_who_round_trips_through_the_schema(who):
    doc = _record(who).to_json()

    assert schemas.errors("ledger", doc) == []
    assert LedgerRecord.from_json(doc) == _record(who)
    assert ("who" in doc) == (who is not None)  # records without it keep the bytes they always had


def test_the_schema_refuses_unknown_who_keys():
    doc = _record(Who("arn:aws:iam::123456789012:user/alice")).to_json()
    doc["who"]["token"] = "ghs_secret"

    assert schemas.errors("ledger", doc)


def test_history_says_who_as_a_person_reads_it():
    session = "arn:aws:sts::222222222222:assumed-role/relay-deployer/relay-shop-staging"
    older = attrs.evolve(_record(None), actor=session)
    person = attrs.evolve(older, who=Who("arn:aws:iam::123456789012:user/alice"))
    ci = attrs.evolve(older, who=Who("arn:aws:sts::111111111111:assumed-role/gh-oidc/GitHubActions", ci_run(GITHUB)))

    assert who_text(older) == "assumed-role/relay-deployer/relay-shop-staging"
    assert who_text(person) == "user/alice as assumed-role/relay-deployer/relay-shop-staging"
    assert who_text(ci) == "octocat (GitHub Actions) as assumed-role/gh-oidc/GitHubActions"
