"""A new function setting end to end against moto: `ephemeral_storage` (Lambda's `EphemeralStorage.Size`).

moto 5.2.5 honours `EphemeralStorage` on CreateFunction and returns it in every
configuration, but ignores it on UpdateFunctionConfiguration: what relay sends
on an update is checked at the seam, what Lambda keeps after a create in moto.
"""

from __future__ import annotations

import attrs

from builder.aws.lambda_ import settings_params
from builder.promote.instructions import UpdateConfiguration


class RecordingLambda:
    """The real Lambda seam, remembering the configuration parameters each update sends."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.configured: list[tuple[str, dict]] = []

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def update_configuration(self, name, settings, **kwargs):
        self.configured.append((name, settings_params(settings, configuration=True)))
        return self._inner.update_configuration(name, settings, **kwargs)


def _set_orders_storage(shop, size: int | None) -> None:
    lines = [line for line in shop.config.read_text().splitlines(keepends=True) if not line.startswith("ephemeral_storage")]
    text = "".join(lines)
    if size is not None:
        text = text.replace("memory = 256\n", f"memory = 256\nephemeral_storage = {size}\n", 1)
    shop.config.write_text(text)


def test_ephemeral_storage_is_deployed_and_a_change_publishes_a_new_version_of_that_function_only(shop):
    _set_orders_storage(shop, 1024)
    shop.publish("1.0.0")

    shop.promote("1.0.0", "staging")
    assert shop.version_config("staging", "orders", "live")["EphemeralStorage"] == {"Size": 1024}
    assert shop.version_config("staging", "notify", "live")["EphemeralStorage"] == {"Size": 512}

    again = shop.promote("1.0.0", "staging")  # the same settings: every published version is reused
    assert again.status == "unchanged"
    assert [len(shop.versions("staging", fn)) for fn in ("orders", "notify")] == [1, 1]

    # The same release (the same bytes and recorded settings); staging sets one setting its own way.
    shop.config.write_text(shop.config.read_text().replace(
        'soak = "30m"', 'soak = "30m"\n\n[environments.staging.functions.orders]\nephemeral_storage = 2048\n', 1))
    access = shop.access("staging")
    recording = RecordingLambda(access.lam)
    result = shop.promote("1.0.0", "staging", access=attrs.evolve(access, lam=recording))

    assert {f.function: f.action for f in result.plan.functions} == {
        "orders": "deploy", "billing": "unchanged", "notify": "unchanged"}
    (orders,) = [f for f in result.plan.functions if f.function == "orders"]
    assert [(type(step), step.changes) for step in orders.steps] == [(UpdateConfiguration, ("ephemeral_storage",))]
    assert [(name, sent["EphemeralStorage"]) for name, sent in recording.configured] == [("shop-orders", {"Size": 2048})]
    assert shop.alias("staging", "orders")["FunctionVersion"] == "2"
    assert [len(shop.versions("staging", fn)) for fn in ("orders", "notify")] == [2, 1]
