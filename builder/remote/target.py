"""Which versions an environment's alias of one function serves: what `relay logs` reads and `relay invoke --env` calls."""

from __future__ import annotations

from typing import Protocol

import attrs

from builder.config import Environment, Function
from builder.errors import NotFound
from builder.lambda_records import AliasConfig


class AliasReader(Protocol):
    def get_alias(self, name: str, alias: str) -> AliasConfig | None: ...


@attrs.frozen
class AliasTarget:
    """One function's alias in one environment, and the versions it routes to (two during a canary)."""

    function: str  # the name in relay.toml
    function_name: str  # the Lambda function's name
    env: str
    account: str
    region: str
    alias: str
    version: str  # the alias' main version
    weights: tuple[tuple[str, float], ...] = ()  # other versions and their share of the traffic

    @property
    def versions(self) -> tuple[str, ...]:
        return (self.version, *(v for v, _ in self.weights if v != self.version))

    def share(self, version: str) -> float:
        """The part of the alias' traffic `version` gets (1.0 without a canary)."""
        weights = dict(self.weights)
        if version == self.version:
            return 1.0 - sum(weights.values())
        return weights.get(version, 0.0)

    def to_json(self) -> dict:
        return {"function": self.function, "function_name": self.function_name, "env": self.env,
                "account": self.account, "region": self.region, "alias": self.alias,
                "versions": {v: round(self.share(v), 4) for v in self.versions}}


def alias_target(env: Environment, function: Function, lam: AliasReader) -> AliasTarget:
    """The alias `env.alias` of `function` as Lambda has it now; NotFound when it was never promoted there."""
    alias = lam.get_alias(function.function_name, env.alias)
    if alias is None:
        raise NotFound(f"{function.function_name} has no alias {env.alias!r} in {env.name} (account {env.account})",
                       hint=f"Promote a release to {env.name} first (`relay promote VERSION --to {env.name}`); "
                            "`relay status` shows what runs where.")
    return AliasTarget(function=function.name, function_name=function.function_name, env=env.name,
                       account=env.account, region=env.region, alias=env.alias,
                       version=alias.function_version, weights=alias.weights)
