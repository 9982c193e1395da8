"""`relay status`: what runs where, canary weights, and drift (code changed by hand)."""

from __future__ import annotations

import io
import zipfile

from promote_helpers import FUNCTIONS

from builder.commands.render.status import status_summary
from builder.promote.factory import run_status


def hand_made_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("orders/handler.py", "def handle(event, context):\n    return 'patched in the console'\n")
    return buffer.getvalue()


def test_status_shows_alias_version_release_and_digest_per_environment(shop, relay_cli):
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    release = shop.release("1.0.0")

    run = relay_cli("status", "--json", cwd=shop.root)

    assert run.code == 0, run.stderr
    doc = run.json()
    assert doc["drift"] is False and doc["registry_problem"] is None
    by_env = {e["env"]: e for e in doc["environments"]}
    staging = {f["function"]: f for f in by_env["staging"]["functions"]}
    for fn in FUNCTIONS:
        assert staging[fn]["alias_version"] == "1"
        assert staging[fn]["artifact"] == "1.0.0"
        assert staging[fn]["sha256"] == release["functions"][fn]["sha256"]
        assert staging[fn]["code_sha256"] == staging[fn]["registry_code_sha256"] == release["functions"][fn]["code_sha256"]
    assert {f["exists"] for f in by_env["prod"]["functions"]} == {False}
    text = relay_cli("status", cwd=shop.root).stdout
    assert "live -> 1" in text and "absent" in text and "DRIFT" not in text


def test_code_changed_by_hand_in_staging_shows_as_drift(shop, relay_cli):
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    shop.lam("staging").update_function_code(FunctionName="shop-orders", ZipFile=hand_made_zip())

    report = run_status(shop.project(), "staging")

    assert report.drifted
    rows = {f.function: f for f in report.environments[0].functions}
    assert [d for d in rows["orders"].drift if "$LATEST holds code relay never published" in d]
    assert not rows["billing"].drifted and not rows["notify"].drifted
    run = relay_cli("status", "--env", "staging", cwd=shop.root)
    assert run.code == 14 and "DRIFT" in run.stdout  # drift is never a success, --check or not


def test_a_version_published_by_hand_behind_the_alias_is_drift(shop):
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    lam = shop.lam("staging")
    lam.update_function_code(FunctionName="shop-orders", ZipFile=hand_made_zip())
    version = lam.publish_version(FunctionName="shop-orders", Description="hotfix")["Version"]
    lam.update_alias(FunctionName="shop-orders", Name="live", FunctionVersion=version)

    rows = {f.function: f for f in run_status(shop.project(), "staging").environments[0].functions}

    assert any("was not published by relay" in d for d in rows["orders"].drift)


def test_a_rollback_is_not_drift_and_status_shows_canary_weights(shop):
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    shop.set_code("orders", "b")
    shop.publish("1.1.0")
    shop.promote("1.1.0", "staging")
    from builder.promote.factory import run_rollback
    from builder.promote.rollback import RollbackRequest

    run_rollback(shop.project(), "staging", RollbackRequest(), clock=shop.clock)
    shop.lam("staging").update_alias(FunctionName="shop-billing", Name="live",
                                     RoutingConfig={"AdditionalVersionWeights": {"1": 0.0}})

    report = run_status(shop.project(), "staging")

    shown = status_summary(report)
    assert not report.drifted, shown
    assert "1:0%" in shown and "DRIFT" not in shown
    rows = {f.function: f for f in report.environments[0].functions}
    assert rows["orders"].artifact == "1.0.0"
    assert rows["billing"].weights == (("1", 0.0),)


def test_status_without_the_registry_still_reports_from_the_descriptions(shop):
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    shop.config.write_text(shop.config.read_text().replace('bucket = "relay-artifacts"', 'bucket = "no-such-bucket"'))

    report = run_status(shop.project(), "staging")

    assert report.registry_problem and "no such bucket" in report.registry_problem
    assert not report.drifted
    assert {f.artifact for f in report.environments[0].functions} == {"1.0.0"}
