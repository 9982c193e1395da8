"""The command line as a user runs it: plans, JSON, exit codes."""

from __future__ import annotations

from promote_helpers import BUCKET, FUNCTIONS

from builder import schemas


def test_promote_dry_run_then_promote_then_status_then_rollback(shop, relay_cli):
    shop.publish("1.0.0")

    plan = relay_cli("promote", "1.0.0", "--to", "staging", "--dry-run", "--json", cwd=shop.root)
    assert plan.code == 0, plan.stderr
    doc = plan.json()
    assert doc["status"] == "planned" and doc["plan"]["to_version"] == "1.0.0"
    assert {f["action"] for f in doc["plan"]["functions"]} == {"create"}
    assert shop.function_names("staging") == []

    human = relay_cli("promote", "1.0.0", "--to", "staging", "--dry-run", cwd=shop.root)
    assert "Plan: promote shop - -> 1.0.0 in staging" in human.stdout and "create function" in human.stdout

    done = relay_cli("promote", "1.0.0", "--to", "staging", "--json", cwd=shop.root)
    assert done.code == 0, done.stderr
    assert "note: signing with key" in done.stderr  # the ledger's records are signed: relay says with which key
    result = done.json()
    assert result["status"] == "succeeded" and set(result["versions"]) == set(FUNCTIONS)
    assert result["aws_requests"]["by_operation"]["lambda.PublishVersion"] == 3
    assert result["ledger_seq"] == 2

    again = relay_cli("promote", "1.0.0", "--to", "staging", cwd=shop.root)
    assert again.code == 0 and "nothing to do" in again.stdout

    for record in shop.ledger("staging"):
        assert schemas.errors("ledger", record) == []


def test_exit_codes_of_refusals(shop, relay_cli):
    shop.publish("1.0.0")

    gate = relay_cli("promote", "1.0.0", "--to", "prod", cwd=shop.root)
    assert gate.code == 9 and "requires: staging has not run" in gate.stderr

    no_reason = relay_cli("promote", "1.0.0", "--to", "prod", "--force", cwd=shop.root)
    assert no_reason.code == 2 and "--reason" in no_reason.stderr

    unknown_env = relay_cli("promote", "1.0.0", "--to", "qa", cwd=shop.root)
    assert unknown_env.code == 12 and "no environment named 'qa'" in unknown_env.stderr

    missing = relay_cli("promote", "9.9.9", "--to", "staging", cwd=shop.root)
    assert missing.code == 12 and "not published" in missing.stderr

    s3 = shop.aws.client("registry", "s3")
    key = "relay/shop/releases/1.0.0.json"
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.replace(b'"python3.12"', b'"python3.13"'))
    tampered = relay_cli("promote", "1.0.0", "--to", "staging", "--json", cwd=shop.root)
    assert tampered.code == 8
    assert tampered.json()["error"] == "ReleaseVerificationFailed"
    assert shop.function_names("staging") == []
    assert [r["status"] for r in shop.ledger("staging")] == ["refused"]


def test_rollback_without_anything_to_roll_back_says_so(shop, relay_cli):
    shop.publish("1.0.0")
    relay_cli("promote", "1.0.0", "--to", "staging", cwd=shop.root)

    run = relay_cli("rollback", "--env", "staging", cwd=shop.root)

    assert run.code == 12
    assert "nothing to roll back" in run.stderr
