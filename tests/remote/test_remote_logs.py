"""`relay logs FN --env ENV`: the lines of the versions the environment's alias serves, through the CLI.

moto 5.2 runs Lambda without Docker here (`use_docker = False`, as the test
fixtures and `relay local` configure it). That Lambda runs no code: Invoke
echoes the event (or a result queued through moto's API) and writes nothing
to CloudWatch Logs (no log group, no `LogResult`). So these tests put the
lines into the log streams themselves, named as Lambda names them
(`<date>/[<version>]<id>`); `test_moto_lambda_writes_no_logs_when_invoked`
keeps that finding honest: when moto starts writing logs it fails, and these
tests can switch to lines a function printed.
"""

from __future__ import annotations

import datetime as dt

from remote_helpers import deploy, now_ms, put_lines

from builder.errors import NotFound, UnknownName, UsageError


def test_moto_lambda_writes_no_logs_when_invoked(shop, relay_cli):
    done = relay_cli("invoke", "orders", "--env", "staging", cwd=shop.root)

    assert done.code == 0, done
    assert shop.client("staging", "logs").describe_log_groups()["logGroups"] == []
    assert "(no log tail in Lambda's reply)" in done.stderr


def test_logs_shows_the_alias_version_lines_and_not_other_versions(shop, relay_cli):
    served = put_lines(shop, "staging", "shop-orders", "1", ["START RequestId: r1 Version: 1", "order 42 accepted"])
    put_lines(shop, "staging", "shop-orders", "$LATEST", ["unpublished code ran"])
    put_lines(shop, "staging", "shop-orders", "7", ["a version the alias does not serve"])
    put_lines(shop, "staging", "shop-billing", "1", ["another function's line"])

    human = relay_cli("logs", "orders", "--env", "staging", cwd=shop.root)

    assert human.code == 0, human
    assert "order 42 accepted" in human.stdout and "[1] START RequestId: r1" in human.stdout
    for other in ("unpublished code ran", "does not serve", "another function"):
        assert other not in human.stdout
    assert "alias live -> version 1; log group /aws/lambda/shop-orders" in human.stderr
    assert "(account 222222222222, us-east-1)" in human.stderr

    doc = relay_cli("logs", "orders", "--env", "staging", "--json", cwd=shop.root)
    assert doc.code == 0, doc
    found = doc.json()
    assert (found["function_name"], found["env"], found["alias"], found["versions"]) == (
        "shop-orders", "staging", "live", {"1": 1.0})
    assert [(e["version"], e["stream"], e["message"]) for e in found["events"]] == [
        ("1", served, "START RequestId: r1 Version: 1"), ("1", served, "order 42 accepted")]


def test_logs_during_a_canary_shows_both_versions(shop, relay_cli):
    assert deploy(shop, "staging", "orders", variant="b") == "2"
    # What the first canary step leaves: version 1 keeps 90% of the traffic, version 2 gets 10%.
    shop.lam("staging").update_alias(FunctionName="shop-orders", Name="live", FunctionVersion="1",
                                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
    put_lines(shop, "staging", "shop-orders", "1", ["old code"], at_ms=now_ms() - 2000)
    put_lines(shop, "staging", "shop-orders", "2", ["new code"], at_ms=now_ms() - 1000)

    run = relay_cli("logs", "orders", "--env", "staging", cwd=shop.root)

    assert run.code == 0, run
    assert "alias live -> versions 1 (90%), 2 (10%)" in run.stderr
    lines = run.stdout.splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == ["[1] old code", "[2] new code"]


def test_since_takes_a_duration_or_an_iso_time(shop, relay_cli):
    hour_ago = now_ms() - 3600_000
    put_lines(shop, "staging", "shop-orders", "1", ["an hour ago"], at_ms=hour_ago, instance="a" * 32)
    put_lines(shop, "staging", "shop-orders", "1", ["just now"], instance="b" * 32)

    recent = relay_cli("logs", "orders", "--env", "staging", cwd=shop.root)  # default: the last 10 minutes
    wider = relay_cli("logs", "orders", "--env", "staging", "--since", "2h", cwd=shop.root)
    at = dt.datetime.fromtimestamp((hour_ago - 60_000) / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    iso = relay_cli("logs", "orders", "--env", "staging", "--since", at, "--json", cwd=shop.root)

    assert "just now" in recent.stdout and "an hour ago" not in recent.stdout
    assert wider.stdout.index("an hour ago") < wider.stdout.index("just now")
    assert [e["message"] for e in iso.json()["events"]] == ["an hour ago", "just now"]

    bad = relay_cli("logs", "orders", "--env", "staging", "--since", "yesterday", cwd=shop.root)
    assert bad.code == UsageError.exit_code and "--since 'yesterday'" in bad.stderr and "hint:" in bad.stderr


def test_logs_of_a_function_that_never_logged_say_so(shop, relay_cli):
    run = relay_cli("logs", "notify", "--env", "staging", cwd=shop.root)
    doc = relay_cli("logs", "notify", "--env", "staging", "--json", cwd=shop.root)

    assert run.code == 0, run
    assert run.stdout == ""
    assert "no log group /aws/lambda/shop-notify yet" in run.stderr
    assert doc.json()["log_group_found"] is False and doc.json()["events"] == []


def test_logs_where_nothing_was_promoted_or_of_unknown_names_fail_with_a_hint(shop, relay_cli):
    prod = relay_cli("logs", "orders", "--env", "prod", cwd=shop.root)
    assert prod.code == NotFound.exit_code
    assert "shop-orders has no alias 'live' in prod" in prod.stderr and "relay promote VERSION --to prod" in prod.stderr

    as_json = relay_cli("logs", "orders", "--env", "prod", "--json", cwd=shop.root)
    assert as_json.json()["exit_code"] == NotFound.exit_code

    typo = relay_cli("logs", "ordrs", "--env", "staging", cwd=shop.root)
    assert typo.code == UnknownName.exit_code and "no function named 'ordrs'" in typo.stderr and "hint:" in typo.stderr
    no_env = relay_cli("logs", "orders", "--env", "qa", cwd=shop.root)
    assert no_env.code == UnknownName.exit_code and "no environment named 'qa'" in no_env.stderr
