"""Who did what: ledger records carry the caller before any role was assumed, and the CI run (moto, three accounts).

The shop is promoted through the CLI with an assumed deployer role; `relay
history` then has to show the base credentials' ARN (not the role session's),
and in GitHub Actions the run's URL and actor. The field is signed: an edited
`who` is refused like any other edit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "promote"))

from promote_helpers import BUCKET, new_shop

from builder.promote.ledger import Ledger
from builder.promote.records import FunctionChange

GITHUB = {
    "GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octocat", "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/shop", "GITHUB_RUN_ID": "4242", "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567", "GITHUB_WORKFLOW": "release",
    "GITHUB_REF": "refs/heads/main", "GITHUB_TOKEN": "ghs_must_not_be_recorded",
}
RUN_URL = "https://github.com/acme/shop/actions/runs/4242/attempts/1"


@pytest.fixture
def shop(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    for name in [*GITHUB, "GITLAB_CI", "CODEBUILD_BUILD_ID", "CODEBUILD_BUILD_ARN"]:
        monkeypatch.delenv(name, raising=False)
    return new_shop(aws, tmp_path)


def base_caller_arn(aws) -> str:
    """Who the test's own credentials are, asked directly (no role): what relay must record as the base."""
    return boto3.client("sts", region_name=aws.region).get_caller_identity()["Arn"]


def test_history_shows_the_base_caller_and_the_github_run_and_an_edit_is_refused(shop, aws, relay_cli, monkeypatch):
    shop.publish("1.0.0")
    for name, value in GITHUB.items():
        monkeypatch.setenv(name, value)

    promoted = relay_cli("-C", str(shop.root), "promote", "1.0.0", "--to", "staging", "--json")
    shown = relay_cli("-C", str(shop.root), "history", "--env", "staging", "--json")
    text = relay_cli("-C", str(shop.root), "history", "--env", "staging")

    assert promoted.code == 0, promoted
    assert shown.code == 0, shown
    entry = shown.json()["entries"][0]
    assert entry["state"] == "succeeded"
    # The role session is the deployer's, shared by everyone; the base ARN is who was behind it.
    assert ":assumed-role/relay-deployer/" in entry["actor"]
    assert entry["who"]["base_arn"] == base_caller_arn(aws) != entry["actor"]
    ci = entry["who"]["ci"]
    assert (ci["system"], ci["actor"], ci["run_url"], ci["commit"]) == (
        "github-actions", "octocat", RUN_URL, GITHUB["GITHUB_SHA"])
    assert "ghs_" not in json.dumps(shop.ledger("staging"))
    # Both records of the run (started and succeeded) say so, inside what is signed.
    assert [r["who"]["ci"]["actor"] for r in shop.ledger("staging")] == ["octocat", "octocat"]
    assert text.code == 0 and "octocat (GitHub Actions)" in text.stdout and RUN_URL in text.stdout

    # An edited `who`: the signature stays, so a trusted key signed other bytes.
    s3 = shop.client("registry", "s3")
    key = "relay/shop/ledger/staging/0000000002.json"
    doc = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    doc["who"]["ci"]["actor"] = "someone-else"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(doc).encode())

    flagged = relay_cli("-C", str(shop.root), "history", "--env", "staging", "--json")
    rolled = relay_cli("-C", str(shop.root), "rollback", "--env", "staging")

    assert flagged.code == 0, flagged
    assert flagged.json()["entries"][0]["checks"]["2"] == "edited" and not flagged.json()["trusted"]
    assert rolled.code == 8, rolled
    assert "seq 2: edited" in rolled.stderr


def test_the_base_caller_is_asked_once_and_ci_only_in_ci(shop, aws):
    from builder.aws.session import RequestCounter
    from builder.promote.actor import Who
    from builder.promote.factory import connect

    counter = RequestCounter()
    outside = connect(shop.project(), "staging", environ={"HOME": "/home/alice"}, counter=counter)
    inside = connect(shop.project(), "prod", environ=GITHUB)

    assert outside.actor.who == outside.actor.who == Who(base_caller_arn(aws), None)
    assert counter.by_operation()["sts.GetCallerIdentity"] == 2  # the role session's check, and the base caller once
    assert ":assumed-role/relay-deployer/relay-shop-prod" in inside.actor
    assert inside.actor.who is not None and inside.actor.who.base_arn == base_caller_arn(aws)
    assert inside.actor.who.ci is not None and inside.actor.who.ci.run_url == RUN_URL


def test_records_written_before_who_still_verify_and_render(shop, aws, relay_cli):
    """A signed record without `who` (as relay wrote them before issue 12) is ok, and history shows its actor."""
    project = shop.project()
    from builder.promote.factory import ledger_signer, ledger_trust

    store = shop.store()
    ledger = Ledger(store, "shop", "staging", signer=ledger_signer(project, store),
                    trusted=ledger_trust(project))
    session = "arn:aws:sts::222222222222:assumed-role/relay-deployer/relay-shop-staging"
    opened = ledger.open(event="promote", actor=session, from_version=None, to_version="1.0.0",
                         changes=[FunctionChange("orders", None, None, None, "1.0.0", None, None)])
    ledger.close(opened, status="failed", reason="stopped before any change")
    assert all("who" not in r for r in shop.ledger("staging"))

    shown = relay_cli("-C", str(shop.root), "history", "--env", "staging", "--json")
    text = relay_cli("-C", str(shop.root), "history", "--env", "staging")

    assert shown.code == 0 and shown.json()["trusted"], shown
    entry = shown.json()["entries"][0]
    assert entry["who"] is None and entry["checks"] == {"1": "ok", "2": "ok"}
    assert "assumed-role/relay-deployer/relay-shop-staging" in text.stdout


def test_a_busy_environment_names_who_holds_it(store):
    from builder.errors import RaceLost
    from builder.promote.actor import Actor, Who, ci_run

    ledger = Ledger(store, "shop", "prod")
    session = "arn:aws:sts::333333333333:assumed-role/relay-deployer/relay-shop-prod"
    ledger.open(event="promote", actor=Actor(session, Who("arn:aws:iam::123456789012:user/ci", ci_run(GITHUB))),
                from_version=None, to_version="1.0.0", changes=[])

    with pytest.raises(RaceLost) as lost:
        ledger.open(event="rollback", actor=Actor(session, Who("arn:aws:iam::123456789012:user/alice")),
                    from_version="1.0.0", to_version=None, changes=[])

    assert f"by {session} (octocat in GitHub Actions {RUN_URL})" in lost.value.message
