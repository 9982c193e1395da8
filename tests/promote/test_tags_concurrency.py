"""Tags and reserved concurrency: function-level settings recorded in the release and set per environment.

moto 5.2.5 implements what relay calls here: GetFunction returns `Tags` and
`Concurrency`, and TagResource, UntagResource, PutFunctionConcurrency and
DeleteFunctionConcurrency change them; so the account is checked with boto3
and the calls relay makes are recorded through a wrapper of the real seam.
"""

from __future__ import annotations

import io
import zipfile

import attrs

from builder.commands.render.diff import diff_summary
from builder.commands.render.promote import plan_summary
from builder.commands.render.status import status_summary
from builder.promote.factory import run_status
from builder.registry.diff import diff_versions
from builder.registry.factory import open_store, trusted_keys
from builder.settings import MANAGED_TAGS

WRITES = {"tag_function", "untag_function", "put_reserved_concurrency", "delete_reserved_concurrency"}
ORDERS_SETTINGS = 'tags = { team = "payments", env = "{env}" }\nreserved_concurrency = 50\n'


class RecordingLambda:
    """The real Lambda seam, remembering each tag and concurrency write relay makes."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.calls: list[tuple[str, str, object]] = []

    def __getattr__(self, name):
        real = getattr(self._inner, name)
        if name not in WRITES:
            return real

        def call(function_name, *args, **kwargs):
            self.calls.append((name, function_name, args[-1] if args else None))
            return real(function_name, *args, **kwargs)

        return call


def _set(shop, old: str, new: str) -> None:
    text = shop.config.read_text()
    assert old in text
    shop.config.write_text(text.replace(old, new, 1))


def _recording(shop, env: str) -> tuple[RecordingLambda, object]:
    access = shop.access(env)
    recording = RecordingLambda(access.lam)
    return recording, attrs.evolve(access, lam=recording)


def _function(shop, env: str, fn: str) -> dict:
    return shop.lam(env).get_function(FunctionName=f"shop-{fn}")


def _tags(shop, env: str, fn: str) -> dict:
    return _function(shop, env, fn).get("Tags") or {}


def _reserved(shop, env: str, fn: str) -> int | None:
    return (_function(shop, env, fn).get("Concurrency") or {}).get("ReservedConcurrentExecutions")


def _with_orders_settings(shop) -> None:
    shop.staging_extra = "\n[environments.staging.functions.orders]\nreserved_concurrency = 5\n"
    shop.write_config()
    _set(shop, "memory = 256\n", "memory = 256\n" + ORDERS_SETTINGS)


def test_tags_and_reserved_concurrency_differ_per_account_and_a_second_promote_makes_no_calls(shop):
    _with_orders_settings(shop)
    shop.publish("1.0.0")
    assert shop.release("1.0.0")["functions"]["orders"]["settings"]["tags"] == {"team": "payments", "env": "{env}"}
    assert shop.release("1.0.0")["functions"]["orders"]["settings"]["reserved_concurrency"] == 50
    assert "tags" not in shop.release("1.0.0")["functions"]["notify"]["settings"]  # unset: not written

    shop.promote("1.0.0", "staging")
    shop.clock.advance(31 * 60)
    shop.promote("1.0.0", "prod")

    assert _tags(shop, "staging", "orders") == {"team": "payments", "env": "staging", MANAGED_TAGS: "env team"}
    assert _tags(shop, "prod", "orders") == {"team": "payments", "env": "prod", MANAGED_TAGS: "env team"}
    assert (_reserved(shop, "staging", "orders"), _reserved(shop, "prod", "orders")) == (5, 50)
    assert _tags(shop, "staging", "notify") == {} and _reserved(shop, "staging", "notify") is None
    # Function-level: the published version is the same one, with the same code, in both accounts.
    assert shop.live_code("staging", "orders") == shop.live_code("prod", "orders")

    recording, access = _recording(shop, "staging")
    again = shop.promote("1.0.0", "staging", access=access)

    assert again.status == "unchanged"
    assert recording.calls == []


def test_a_changed_value_in_a_new_release_is_applied_shown_by_diff_and_leaves_others_tags(shop):
    _with_orders_settings(shop)
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    lam = shop.lam("staging")
    arn = _function(shop, "staging", "orders")["Configuration"]["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={"cost-center": "42", "aws:cloudformation:stack-name": "shop-stack"})

    _set(shop, 'tags = { team = "payments", env = "{env}" }', 'tags = { team = "checkout" }')
    _set(shop, "reserved_concurrency = 50", "reserved_concurrency = 60")
    shop.staging_extra = ""
    text = shop.config.read_text()
    shop.config.write_text(text.replace("\n[environments.staging.functions.orders]\nreserved_concurrency = 5\n", "\n"))
    shop.publish("1.1.0")  # the same code: only function-level settings changed

    project = shop.project()
    diff = diff_versions(open_store(project), "shop", "1.0.0", "1.1.0", trusted_keys(project, None))
    (orders,) = [b for b in diff.bundles if b.bundle == "orders"]
    assert [(c.key, c.from_value, c.to_value) for c in orders.settings] == [
        ("reserved_concurrency", 50, 60), ("tags.env", "{env}", None), ("tags.team", "payments", "checkout")]
    assert "~ tags.team payments -> checkout" in diff_summary(diff)

    recording, access = _recording(shop, "staging")
    result = shop.promote("1.1.0", "staging", access=access)

    (planned,) = [f for f in result.plan.functions if f.function == "orders"]
    assert planned.publishes is False  # not a version setting: the published version is reused
    assert planned.action == "configure"
    shown = plan_summary(result.plan)
    assert "set tags; set reserved concurrency; already live" in shown
    assert "orders: tags team=checkout; reserved concurrency 60" in shown
    assert sorted(call[0] for call in recording.calls) == ["put_reserved_concurrency", "tag_function", "untag_function"]
    assert ("untag_function", "shop-orders", ("env",)) in recording.calls
    assert _tags(shop, "staging", "orders") == {"team": "checkout", MANAGED_TAGS: "team", "cost-center": "42",
                                                 "aws:cloudformation:stack-name": "shop-stack"}
    assert _reserved(shop, "staging", "orders") == 60


def test_a_tag_or_reserved_concurrency_changed_by_hand_is_configuration_drift(shop, relay_cli):
    _with_orders_settings(shop)
    shop.publish("1.0.0")
    shop.promote("1.0.0", "staging")
    lam = shop.lam("staging")
    arn = _function(shop, "staging", "orders")["Configuration"]["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={"team": "someone-else", "cost-center": "42"})
    lam.put_function_concurrency(FunctionName="shop-orders", ReservedConcurrentExecutions=7)

    report = run_status(shop.project(), "staging")
    rows = {f.function: f for f in report.environments[0].functions}

    assert [(d.where, d.setting) for d in rows["orders"].config_drift] == [
        ("function", "tags"), ("function", "reserved_concurrency")]
    shown = status_summary(report)
    assert "function tags differ (team: 'someone-else', the release says 'payments')" in shown
    assert "function reserved_concurrency is 7, the release says 5" in shown
    assert relay_cli("status", "--env", "staging", "--check", cwd=shop.root).code == 14

    shop.promote("1.0.0", "staging")  # sets them again; cost-center is not relay's
    assert _tags(shop, "staging", "orders")["team"] == "payments"
    assert _tags(shop, "staging", "orders")["cost-center"] == "42"
    assert _reserved(shop, "staging", "orders") == 5
    assert relay_cli("status", "--env", "staging", "--check", cwd=shop.root).code == 0


def _iac_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("orders/handler.py", "def handle(event, context):\n    return 'deployed by the stack'\n")
    return buffer.getvalue()


def test_manage_code_never_touches_tags_or_reserved_concurrency(shop):
    _with_orders_settings(shop)
    shop.staging_extra = '\n[environments.staging.functions.orders]\nmanage = "code"\nreserved_concurrency = 5\n'
    shop.write_config()
    _set(shop, "memory = 256\n", "memory = 256\n" + ORDERS_SETTINGS)
    lam = shop.lam("staging")
    lam.create_function(FunctionName="shop-orders", Runtime="python3.12", Role="arn:aws:iam::222222222222:role/relay-exec",
                        Handler="orders.handler.handle", Code={"ZipFile": _iac_zip()}, Tags={"team": "iac"})
    lam.put_function_concurrency(FunctionName="shop-orders", ReservedConcurrentExecutions=3)
    shop.publish("1.0.0")

    recording, access = _recording(shop, "staging")
    shop.promote("1.0.0", "staging", access=access)

    assert [call for call in recording.calls if call[1] == "shop-orders"] == []
    assert _tags(shop, "staging", "orders") == {"team": "iac"}
    assert _reserved(shop, "staging", "orders") == 3
    assert shop.alias("staging", "orders")["FunctionVersion"] == "1"
