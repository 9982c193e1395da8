"""What goes wrong: tampered or untrusted releases, failures half-way, and two promoters at once."""

from __future__ import annotations

import json
import threading

import attrs
import pytest
from promote_helpers import BUCKET, FUNCTIONS, FailingLambda

from builder.errors import AwsError, RaceLost, VerificationFailed
from builder.promote.executor import ApplyFailed


def published_twice(shop):
    """1.0.0 live in staging; 1.1.0 (orders, billing and notify all changed) published."""
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    for fn in FUNCTIONS:
        shop.set_code(fn, "b")
    shop.publish("1.1.0")
    return {fn: shop.alias("staging", fn)["FunctionVersion"] for fn in FUNCTIONS}


def staging_snapshot(shop):
    return {fn: (shop.alias("staging", fn)["FunctionVersion"], shop.alias("staging", fn).get("RoutingConfig"),
                 shop.lam("staging").get_function_configuration(FunctionName=f"shop-{fn}")["CodeSha256"])
            for fn in FUNCTIONS}


def test_a_tampered_blob_is_refused_nothing_changes_and_the_refusal_is_recorded(shop):
    before = published_twice(shop)
    snapshot = staging_snapshot(shop)
    s3 = shop.aws.client("registry", "s3")
    sha = shop.release("1.1.0")["functions"]["orders"]["sha256"]
    s3.put_object(Bucket=BUCKET, Key=f"relay/blobs/sha256/{sha}", Body=b"PK\x05\x06" + b"\0" * 18)

    with pytest.raises(VerificationFailed) as caught:
        shop.promote("1.1.0", "staging")

    assert caught.value.exit_code == 8
    assert "function orders blob" in caught.value.message
    assert staging_snapshot(shop) == snapshot
    assert {fn: shop.alias("staging", fn)["FunctionVersion"] for fn in FUNCTIONS} == before
    last = shop.ledger("staging")[-1]
    assert (last["status"], last["to_version"]) == ("refused", "1.1.0")
    assert "verification failed" in last["reason"]


def test_an_untrusted_envelope_is_refused_and_recorded(shop):
    published_twice(shop)
    snapshot = staging_snapshot(shop)
    # Trust another key only: the release's signatures no longer count.
    from builder.registry.signing import generate_key_file

    other = generate_key_file(shop.root / "keys" / "other.key")
    text = shop.config.read_text()
    shop.config.write_text(text.replace(shop.key.keyid, other.keyid).replace("keys/relay.key.pub", "keys/other.key.pub"))

    with pytest.raises(VerificationFailed):
        shop.promote("1.1.0", "staging")

    assert staging_snapshot(shop) == snapshot
    assert shop.ledger("staging")[-1]["status"] == "refused"


def test_a_failure_preparing_the_second_of_three_functions_moves_no_alias_and_a_rerun_completes(shop):
    before = published_twice(shop)
    access = shop.access("staging")
    failing = FailingLambda(access.lam, "update_code", "shop-notify", error=AwsError("injected: throttled"))

    with pytest.raises(ApplyFailed) as caught:
        shop.promote("1.1.0", "staging", access=attrs.evolve(access, lam=failing))

    assert caught.value.exit_code == AwsError.exit_code
    assert "notify: injected: throttled" in caught.value.message and "No alias was moved" in caught.value.message
    assert {fn: shop.alias("staging", fn)["FunctionVersion"] for fn in FUNCTIONS} == before
    failed = shop.ledger("staging")[-1]
    assert failed["status"] == "failed" and "injected" in failed["reason"]
    prepared = {fn: len(shop.versions("staging", fn)) for fn in FUNCTIONS}
    assert prepared == {"billing": 2, "orders": 2, "notify": 1}  # the other two went on and published

    rerun = shop.promote("1.1.0", "staging")

    actions = {f.function: f.action for f in rerun.plan.functions}
    assert actions == {"billing": "switch", "orders": "switch", "notify": "deploy"}  # reused, not published again
    assert {fn: len(shop.versions("staging", fn)) for fn in FUNCTIONS} == {"billing": 2, "orders": 2, "notify": 2}
    release = shop.release("1.1.0")
    for fn in FUNCTIONS:
        assert shop.live_code("staging", fn) == release["functions"][fn]["code_sha256"]
    assert shop.ledger("staging")[-1]["status"] == "succeeded"


def test_a_failure_switching_the_second_alias_moves_the_others_back_and_a_rerun_completes(shop):
    before = published_twice(shop)
    access = shop.access("staging")
    failing = FailingLambda(access.lam, "update_alias", "shop-notify", error=AwsError("injected: alias update failed"))

    with pytest.raises(ApplyFailed) as caught:
        shop.promote("1.1.0", "staging", access=attrs.evolve(access, lam=failing))

    assert set(caught.value.reverted) == {"billing", "orders"}
    assert not caught.value.stuck
    assert "aliases moved back: " in caught.value.message
    for fn in FUNCTIONS:
        alias = shop.alias("staging", fn)
        assert alias["FunctionVersion"] == before[fn]
        assert not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
        assert json.loads(alias["Description"])["version"] == "1.0.0"
    failed = shop.ledger("staging")[-1]
    assert failed["status"] == "failed" and "alias update failed" in failed["reason"]

    rerun = shop.promote("1.1.0", "staging")

    assert {f.action for f in rerun.plan.functions} == {"switch"}
    assert {fn: shop.alias("staging", fn)["FunctionVersion"] for fn in FUNCTIONS} == dict.fromkeys(FUNCTIONS, "2")


def test_two_concurrent_promotions_one_wins_the_other_loses_cleanly(shop, relay_cli):
    published_twice(shop)
    access = shop.access("staging")
    entered, release = threading.Event(), threading.Event()
    blocking = FailingLambda(access.lam, "publish_version", "shop-orders", block=release, entered=entered)
    outcome = {}

    def first():
        try:
            outcome["result"] = shop.promote("1.1.0", "staging", access=attrs.evolve(access, lam=blocking))
        except BaseException as exc:
            outcome["error"] = exc

    runner = threading.Thread(target=first)
    runner.start()
    try:
        assert entered.wait(120), "the first promotion never got to publishing"
        with pytest.raises(RaceLost):
            shop.promote("1.1.0", "staging")
        second = relay_cli("promote", "1.1.0", "--to", "staging", cwd=shop.root)
    finally:
        release.set()
        runner.join(120)

    assert second.code == RaceLost.exit_code, second.stderr
    assert "being changed by another run" in second.stderr
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].status == "succeeded"
    records = shop.ledger("staging")
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))  # no gap, no duplicate
    assert [(r["status"], r["to_version"]) for r in records[-2:]] == [("started", "1.1.0"), ("succeeded", "1.1.0")]
