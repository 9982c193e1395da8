"""relay on a real (pseudo-)terminal: colour and countdowns only where wanted, the protected-environment question."""

from __future__ import annotations

from promote_helpers import FUNCTIONS


def test_colour_on_a_terminal_and_none_with_no_color_or_a_dumb_terminal(shop, terminal):
    shop.publish("1.0.0")
    dry_run = ("promote", "1.0.0", "--to", "staging", "--dry-run")

    coloured = terminal(*dry_run, cwd=shop.root)
    no_color = terminal(*dry_run, cwd=shop.root, env={"NO_COLOR": "1"})
    dumb = terminal(*dry_run, cwd=shop.root, env={"TERM": "dumb"})

    assert coloured.code == 0, coloured.output
    assert "\x1b[" in coloured.output  # the same run on a terminal is styled
    for seen in (no_color, dumb):
        assert seen.code == 0, seen.output
        assert "Plan: promote shop - -> 1.0.0 in staging" in seen.output
        assert "\x1b[" not in seen.output


def test_a_terminal_of_70_columns_gets_the_plan_wrapped_to_70(shop, terminal):
    shop.publish("1.0.0")

    seen = terminal("promote", "1.0.0", "--to", "staging", "--dry-run", cwd=shop.root, columns=70,
                    env={"NO_COLOR": "1"})

    assert seen.code == 0, seen.output
    long = [line for line in seen.output.splitlines() if len(line) > 70]
    assert not long, "\n".join(long)


def test_a_canary_step_counts_down_on_a_terminal(shop, terminal):
    shop.staging_extra = 'canary = { steps = [50], interval = "3s" }\n'
    shop.write_config()
    shop.publish("1.0.0")
    assert terminal("promote", "1.0.0", "--to", "staging", cwd=shop.root).code == 0
    shop.set_code("notify", "b")
    shop.publish("1.1.0")

    seen = terminal("promote", "1.1.0", "--to", "staging", cwd=shop.root)

    assert seen.code == 0, seen.output
    assert "canary 50% in staging, watching no alarms" in seen.output
    assert "s left" in seen.output  # the countdown line


def test_declining_the_protected_question_changes_nothing(shop, terminal):
    shop.staging_extra = "protected = true\n"
    shop.write_config()
    shop.publish("1.0.0")

    declined = terminal("promote", "1.0.0", "--to", "staging", cwd=shop.root, answer="n", env={"NO_COLOR": "1"})

    assert declined.code == 9, declined.output
    question = declined.output.index("staging is protected. Go ahead with the promote of shop in staging (- -> 1.0.0)?")
    assert declined.output.index("Plan: promote shop - -> 1.0.0 in staging") < question
    assert "not confirmed: nothing was changed" in declined.output
    assert shop.function_names("staging") == []
    assert shop.ledger("staging") == []

    agreed = terminal("promote", "1.0.0", "--to", "staging", cwd=shop.root, answer="y")
    assert agreed.code == 0, agreed.output
    assert shop.function_names("staging") == [f"shop-{fn}" for fn in FUNCTIONS]


def test_yes_and_ci_never_ask(shop, terminal):
    shop.staging_extra = "protected = true\n"
    shop.write_config()
    shop.publish("1.0.0")
    assert terminal("promote", "1.0.0", "--to", "staging", "--yes", cwd=shop.root, timeout=180).code == 0
    shop.set_code("notify", "b")
    shop.publish("1.1.0")

    in_ci = terminal("promote", "1.1.0", "--to", "staging", cwd=shop.root, env={"CI": "true"}, timeout=180)

    assert in_ci.code == 0, in_ci.output
    assert "[y/N]" not in in_ci.output and "not asking" in in_ci.output

    rollback = terminal("rollback", "--env", "staging", cwd=shop.root, answer="n")
    assert rollback.code == 9, rollback.output
    assert "Go ahead with the rollback of shop in staging (1.1.0 -> 1.0.0)?" in rollback.output
    assert shop.alias("staging", "notify")["FunctionVersion"] == "2"
