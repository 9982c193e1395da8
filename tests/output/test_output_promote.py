"""What a person sees of promote and rollback: the plan before the work, waits, widths, dry runs, protected envs."""

from __future__ import annotations

import json

from promote_helpers import FUNCTIONS


def _aliases(shop, env: str) -> dict[str, str]:
    return {fn: shop.alias(env, fn)["FunctionVersion"] for fn in FUNCTIONS}


def test_the_plan_is_shown_before_the_first_change_and_json_stays_one_document(shop, person):
    shop.publish("1.0.0")

    seen = person("promote", "1.0.0", "--to", "staging", cwd=shop.root)

    assert seen.code == 0, seen.output
    lines = seen.output.splitlines()
    plan = next(i for i, line in enumerate(lines) if line.startswith("Plan: promote shop - -> 1.0.0 in staging"))
    applied = next(i for i, line in enumerate(lines) if "creating shop-" in line or "ledger seq" in line)
    assert plan < applied, seen.output
    assert seen.output.count("Plan: promote") == 1  # not repeated after the work
    assert lines[-1].startswith("Promoted shop@1.0.0 to staging (ledger seq 2)")

    shop.set_code("notify", "b")
    shop.publish("1.1.0")
    as_json = person("promote", "1.1.0", "--to", "staging", "--json", cwd=shop.root)
    assert as_json.code == 0
    assert json.loads(as_json.stdout)["status"] == "succeeded"  # stdout is the document, nothing else


def test_a_canary_wait_says_what_is_awaited_and_how_long(shop, person):
    shop.staging_extra = 'alarms = ["shop-errors"]\ncanary = { steps = [50], interval = "2s" }\n'
    shop.write_config()
    shop.aws.client("staging", "cloudwatch").put_metric_alarm(
        AlarmName="shop-errors", MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    shop.publish("1.0.0")
    assert person("promote", "1.0.0", "--to", "staging", cwd=shop.root).code == 0
    shop.set_code("notify", "b")
    shop.publish("1.1.0")

    seen = person("promote", "1.1.0", "--to", "staging", cwd=shop.root)

    assert seen.code == 0, seen.output
    assert "  .. waiting 2s: canary 50% in staging, watching shop-errors" in seen.output.splitlines()
    assert "\x1b[" not in seen.output  # not a terminal: no colour, no redraws


def test_a_60_column_terminal_gets_no_line_over_60(shop, person):
    shop.publish("1.0.0")

    seen = person("promote", "1.0.0", "--to", "staging", "--dry-run", cwd=shop.root, env={"COLUMNS": "60"})

    assert seen.code == 0, seen.output
    assert "Dry run: nothing was changed." in seen.output
    long = [line for line in seen.stdout.splitlines() if len(line) > 60]
    assert not long, "\n".join(long)
    wide = person("promote", "1.0.0", "--to", "staging", "--dry-run", cwd=shop.root)
    assert any(len(line) > 60 for line in wide.stdout.splitlines())  # the same plan is wider than 60 unwrapped


def test_rollback_dry_run_prints_the_plan_and_changes_nothing(shop, person):
    shop.publish("1.0.0")
    assert person("promote", "1.0.0", "--to", "staging", cwd=shop.root).code == 0
    shop.set_code("notify", "b")
    shop.publish("1.1.0")
    assert person("promote", "1.1.0", "--to", "staging", cwd=shop.root).code == 0
    before, records = _aliases(shop, "staging"), len(shop.ledger("staging"))

    seen = person("rollback", "--env", "staging", "--dry-run", cwd=shop.root)
    as_json = person("rollback", "--env", "staging", "--dry-run", "--json", cwd=shop.root)

    assert seen.code == 0, seen.output
    assert "Plan: rollback shop 1.1.0 -> 1.0.0 in staging" in seen.output
    assert "Dry run: nothing was changed" in seen.output
    assert as_json.code == 0 and json.loads(as_json.stdout)["status"] == "planned"
    assert _aliases(shop, "staging") == before
    assert len(shop.ledger("staging")) == records

    done = person("rollback", "--env", "staging", cwd=shop.root)  # the same command without --dry-run does move
    assert done.code == 0 and _aliases(shop, "staging") != before


def test_a_protected_environment_off_a_terminal_goes_ahead_and_says_so(shop, person):
    shop.staging_extra = "protected = true\n"
    shop.write_config()
    shop.publish("1.0.0")

    seen = person("promote", "1.0.0", "--to", "staging", cwd=shop.root, input="n\n")

    assert seen.code == 0, seen.output
    assert "staging is protected: not asking (no terminal, or CI), going ahead" in seen.output
    assert shop.function_names("staging") == [f"shop-{fn}" for fn in FUNCTIONS]

    shop.set_code("notify", "b")
    shop.publish("1.1.0")
    as_json = person("promote", "1.1.0", "--to", "staging", "--json", cwd=shop.root)
    assert as_json.code == 0, as_json.output
    assert json.loads(as_json.stdout)["status"] == "succeeded"
    assert "note: staging is protected: not asking" in as_json.output  # on stderr, stdout stays the document
