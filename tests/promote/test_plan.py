"""The planner is pure: hand-made releases and remote states in, frozen plans out. No AWS."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.commands.render.promote import plan_summary
from builder.config import Canary, Environment, Function, Project
from builder.errors import NotFound, VerificationFailed
from builder.lambda_records import AliasConfig, FunctionConfig, LayerVersionInfo
from builder.promote.instructions import CreateFunction, ReuseLayer, UpdateCode, UpdateConfiguration
from builder.promote.plan import RollbackTarget, plan_promotion, plan_rollback
from builder.promote.state import (
    DESCRIPTION_MAX,
    AliasMark,
    FunctionState,
    LayerMark,
    LayerState,
    PublishedVersion,
    RemoteState,
    VersionMark,
    code_sha256_of,
)
from builder.registry.release import Release, ReleaseFunction, ReleaseLayer
from builder.settings import FunctionSettings, LayerRef

ACCOUNT = "222222222222"
ENV = Environment(name="staging", account=ACCOUNT, region="us-east-1", canary=Canary(steps=(10, 100), interval=60))
SHA = {name: (name * 64)[:64] for name in ("a", "b", "c", "d", "e", "f")}
LAYER_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:shop-common:1"


def project(role: str | None = "arn:aws:iam::{account}:role/exec") -> Project:
    settings = FunctionSettings(handler="orders.h.handle", runtime="python3.12", architecture="x86_64", memory=256,
                                timeout=10, environment={"K": "v"})
    fn = Function(name="orders", source=Path("src"), settings=settings, layers=("common",), role=role,
                  function_name="shop-orders")
    return Project(root=Path("."), config_file=Path("relay.toml"), name="shop", runtime="python3.12",
                   architecture="x86_64", functions={"orders": fn})


def release(version: str = "1.1.0", fn_sha: str = SHA["b"], layer_sha: str = SHA["a"]) -> Release:
    layer = ReleaseLayer(name="common", architecture="x86_64", manifest="m", sha256=layer_sha,
                         code_sha256=code_sha256_of(layer_sha), content_digest="x")
    fn = ReleaseFunction(name="orders", manifest="m", sha256=fn_sha, code_sha256=code_sha256_of(fn_sha),
                         content_digest="x", architecture="x86_64", handler="orders.h.handle",
                         layers=("layer-common-x86_64",))
    return Release(app="shop", version=version, runtime="python3.12", functions=[fn], layers=[layer])


def config(version: str, sha: str, *, description: str = "", layers=(LAYER_ARN,), memory: int = 256,
           ephemeral_storage: int = 512) -> FunctionConfig:
    suffix = "" if version == "$LATEST" else f":{version}"
    settings = FunctionSettings(handler="orders.h.handle", runtime="python3.12", memory=memory, timeout=10,
                                ephemeral_storage=ephemeral_storage, environment={"K": "v"},
                                layers=[LayerRef.at(arn) for arn in layers], description=description)
    return FunctionConfig(name="shop-orders", arn=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:shop-orders{suffix}",
                          version=version, code_sha256=code_sha256_of(sha), settings=settings)


def published(version: str, sha: str, artifact: str, **kwargs) -> PublishedVersion:
    mark = VersionMark("shop", "orders", artifact, sha)
    return PublishedVersion(config(version, sha, description=mark.render(), **kwargs), mark)


def state(*, latest=None, alias=None, versions=(), layer_sha=SHA["a"]) -> RemoteState:
    fs = FunctionState("orders", "shop-orders", latest, alias, versions)
    layer = LayerState("shop-common", (LayerVersionInfo("shop-common", LAYER_ARN, 1,
                                                        LayerMark("shop", "common", "x86_64", layer_sha).render(),
                                                        code_sha256_of(layer_sha)),))
    return RemoteState("staging", ACCOUNT, "us-east-1", "live", {"orders": fs}, {"shop-common": layer})


def alias_to(version: str, *, weights=(), previous: str | None = None) -> AliasConfig:
    mark = AliasMark("shop", "1.0.0", SHA["c"], previous)
    return AliasConfig("live", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:shop-orders:live", version,
                       mark.render(), weights)


def test_a_missing_function_is_created_with_the_configured_role():
    plan = plan_promotion(project(), ENV, release(), state())

    action = plan.functions[0]
    assert action.action == "create" and action.publishes and not action.alias.alias_exists
    (create,) = action.steps
    assert isinstance(create, CreateFunction) and create.role == f"arn:aws:iam::{ACCOUNT}:role/exec"
    assert create.settings.environment == (("K", "v"),) and create.settings.memory == 256
    assert isinstance(plan.layers[0], ReuseLayer) and plan.layers[0].arn == LAYER_ARN  # the version carrying the digest


def test_a_missing_function_without_a_role_is_refused():
    with pytest.raises(NotFound) as caught:
        plan_promotion(project(role=None), ENV, release(), state())
    assert "no role to create it" in caught.value.message


def test_new_code_is_deployed_and_the_alias_history_remembers_where_it_was():
    v1 = published("1", SHA["c"], "1.0.0")
    plan = plan_promotion(project(), ENV, release(), state(latest=config("$LATEST", SHA["c"]), alias=alias_to("1"),
                                                           versions=[v1]))

    action = plan.functions[0]
    assert action.action == "deploy" and [type(step) for step in action.steps] == [UpdateCode]
    assert (action.from_version, action.from_artifact, action.from_digest) == ("1", "1.0.0", SHA["c"])
    assert action.alias.history == ("1",)
    assert plan.from_version == "1.0.0" and plan.to_version == "1.1.0"


def test_a_version_carrying_the_digest_is_reused_not_published_again():
    v1, v2 = published("1", SHA["c"], "1.0.0"), published("2", SHA["b"], "1.1.0")
    plan = plan_promotion(project(), ENV, release(), state(latest=config("$LATEST", SHA["b"]), alias=alias_to("1"),
                                                           versions=[v1, v2]))

    action = plan.functions[0]
    assert (action.action, action.target_version, action.publishes) == ("switch", "2", False)


def test_the_alias_already_on_the_release_is_left_alone_but_a_half_done_canary_is_finished():
    v2 = published("2", SHA["b"], "1.1.0")
    done = plan_promotion(project(), ENV, release(), state(latest=config("$LATEST", SHA["b"]), alias=alias_to("2"),
                                                           versions=[v2]))
    assert done.functions[0].action == "unchanged" and done.is_noop

    half = plan_promotion(project(), ENV, release(), state(latest=config("$LATEST", SHA["b"]),
                                                           alias=alias_to("2", weights={"3": 0.1}), versions=[v2]))
    assert half.functions[0].action == "switch" and not half.is_noop


def test_a_version_with_the_right_code_but_other_settings_or_layers_is_not_reused():
    other_memory = published("2", SHA["b"], "1.1.0", memory=128)
    plan = plan_promotion(project(), ENV, release(), state(latest=config("$LATEST", SHA["b"], memory=128),
                                                           alias=alias_to("2"), versions=[other_memory]))
    assert plan.functions[0].action == "deploy"
    (update,) = plan.functions[0].steps  # the code is already there: only the configuration changes
    assert isinstance(update, UpdateConfiguration) and update.changes == ("memory",)

    new_layer = plan_promotion(project(), ENV, release(layer_sha=SHA["d"]),
                               state(latest=config("$LATEST", SHA["b"]), alias=alias_to("2"),
                                     versions=[published("2", SHA["b"], "1.1.0")]))
    assert not isinstance(new_layer.layers[0], ReuseLayer)
    assert new_layer.functions[0].action == "deploy"
    assert [step.changes for step in new_layer.functions[0].steps if isinstance(step, UpdateConfiguration)] == [("layers",)]


def test_a_description_whose_code_disagrees_is_not_trusted():
    forged = PublishedVersion(config("2", SHA["e"], description=VersionMark("shop", "orders", "1.1.0", SHA["b"]).render()),
                              VersionMark("shop", "orders", "1.1.0", SHA["b"]))
    plan = plan_promotion(project(), ENV, release(), state(latest=config("$LATEST", SHA["e"]), alias=alias_to("2"),
                                                           versions=[forged]))
    assert plan.functions[0].action == "deploy" and any(isinstance(step, UpdateCode) for step in plan.functions[0].steps)


def test_rollback_plans_only_alias_moves_and_checks_the_target_bytes():
    v1, v2 = published("1", SHA["c"], "1.0.0"), published("2", SHA["b"], "1.1.0")
    remote = state(latest=config("$LATEST", SHA["b"]), alias=alias_to("2", previous="1"), versions=[v1, v2])

    plan = plan_rollback("shop", ENV, remote, [RollbackTarget("orders", "1", "alias description", ())])

    action = plan.functions[0]
    assert (plan.event, action.action, action.target_version, action.artifact) == ("rollback", "switch", "1", "1.0.0")
    assert plan.to_version == "1.0.0" and not plan.layers
    with pytest.raises(VerificationFailed):
        plan_rollback("shop", ENV, remote, [RollbackTarget("orders", "1", "ledger", (), expected_digest=SHA["f"])])
    with pytest.raises(VerificationFailed):
        plan_rollback("shop", ENV, remote, [RollbackTarget("orders", "7", "ledger", ())])


def test_marks_round_trip_and_the_alias_mark_fits_in_a_description():
    mark = VersionMark("shop", "orders", "1.2.3-rc.1+build.5", SHA["a"])
    assert VersionMark.parse(mark.render()) == mark
    assert VersionMark.parse("hotfix by hand") is None
    layer = LayerMark("shop", "common", "arm64", SHA["b"])
    assert LayerMark.parse(layer.render()) == layer

    long = AliasMark("shop", "10.20.30", SHA["c"], "1000", tuple(str(n) for n in range(999, 900, -1)))
    text = long.render()
    assert len(text) <= DESCRIPTION_MAX
    parsed = AliasMark.parse(text)
    assert parsed.previous == "1000" and parsed.older == long.older[:len(parsed.older)] and parsed.older
    assert AliasMark.parse("not json") is None


def test_the_plan_renders_for_people_and_machines():
    plan = plan_promotion(project(), ENV, release(), state())
    doc = plan.to_json()
    assert doc["functions"][0]["action"] == "create" and doc["layers"][0]["action"] == "reuse"
    assert [step["do"] for step in doc["functions"][0]["instructions"]] == ["create_function", "publish_version", "move_alias"]
    assert doc["functions"][0]["instructions"][0]["settings"]["memory"] == 256
    text = plan_summary(plan)
    assert "create function" in text and "Canary: 10% -> 100%" in text


def test_ephemeral_storage_is_compared_like_every_other_setting():
    v2 = published("2", SHA["b"], "1.1.0", ephemeral_storage=1024)
    other = plan_promotion(project(), ENV, release(), state(latest=config("$LATEST", SHA["b"], ephemeral_storage=1024),
                                                            alias=alias_to("2"), versions=[v2]))
    (update,) = other.functions[0].steps
    assert other.functions[0].action == "deploy" and update.changes == ("ephemeral_storage",)
    assert update.settings.ephemeral_storage == 512

    same = plan_promotion(project(), ENV, release(), state(latest=config("$LATEST", SHA["b"]), alias=alias_to("2"),
                                                           versions=[published("2", SHA["b"], "1.1.0")]))
    assert same.functions[0].action == "unchanged" and same.is_noop
