"""The planner (pure): a release (or rollback targets) + the remote state -> a frozen Plan.

No AWS here: `plan_promotion` and `plan_rollback` read a `RemoteState` and
return typed instructions (`builder.promote.instructions`). `relay promote
--dry-run` prints the plan; the executor applies it. Rollback is a plan too:
only alias moves to versions that already exist.

What makes a published Lambda version "the release's" for a function: its
description carries the function's digest and its `CodeSha256` is that
digest (the bytes), and its settings (`builder.settings.FunctionSettings`:
handler, runtime, architecture, memory, timeout, ephemeral storage,
environment, tracing, logging, VPC, layers by digest or third-party ARN) are
what the environment gets (`desired_settings`: the settings the signed release
records, then the environment's overrides, then `{env}`-style placeholders;
relay.toml's for a release that records none), compared as a whole. Such a version is reused rather than published again,
which is what makes a re-run of a promotion that died half-way finish the
job instead of repeating it.

Tags and reserved concurrency are settings of the function, not of a version:
they never make a version "not the release's". Where they differ from what the
function has (read into the remote state), the plan sets them
(`SetFunctionLevel`) after the versions are published and before the alias
moves; relay removes only tag keys it set before (its `relay:managed-tags`
record) and never touches them for `manage = "code"`. A rollback leaves them.

A function whose environment says `manage = "code"` belongs to infrastructure
code (CloudFormation, CDK, SAM, Terraform): relay never creates it and never
sets its configuration or its layers. Its versions are compared by code (and
the architecture the code is built for) against `$LATEST`'s own settings, so
the version relay publishes carries whatever the other tool set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from builder.config import Environment, Project
from builder.errors import ConfigError, NotFound, VerificationFailed
from builder.frozen import to_tuple
from builder.lambda_records import FunctionConfig
from builder.promote.instructions import (
    CreateFunction,
    FunctionPlan,
    FunctionStep,
    LayerStep,
    MoveAlias,
    Plan,
    PublishLayer,
    PublishVersion,
    ReuseLayer,
    ReuseVersion,
    SetFunctionLevel,
    UpdateCode,
    UpdateConfiguration,
)
from builder.promote.state import FunctionState, RemoteState, VersionMark, code_sha256_of
from builder.registry.release import Release, ReleaseFunction
from builder.settings import (
    FunctionSettings,
    LayerRef,
    code_settings,
    differing_values,
    settings_in_environment,
    tag_changes,
)


def layer_name_in_aws(app: str, layer: str) -> str:
    return f"{app}-{layer}"


# -- promotion --------------------------------------------------------------------------------------


def selected_functions(release: Release, only: Sequence[str]) -> list[ReleaseFunction]:
    if not only:
        return list(release.functions)
    unknown = sorted(set(only) - {f.name for f in release.functions})
    if unknown:
        raise NotFound(f"{release.app}@{release.version} has no function {', '.join(unknown)}",
                       hint=f"It has: {', '.join(f.name for f in release.functions)}.")
    return [f for f in release.functions if f.name in set(only)]


def plan_promotion(project: Project, env: Environment, release: Release, state: RemoteState, *,
                   only: Sequence[str] = ()) -> Plan:
    """What promoting `release` (or its functions `only`) into `env` takes, given what is there."""
    entries = selected_functions(release, only)
    layers = _layer_steps(release, [e for e in entries if env.manage_for(e.name) != "code"], state)
    refs = {layer.bundle: layer.ref for layer in layers}
    functions: list[FunctionPlan] = []
    missing: list[str] = []
    not_ours: list[str] = []
    for entry in entries:
        try:
            functions.append(_function_plan(project, env, release, entry, state, refs))
        except _CannotCreate as exc:
            (not_ours if env.manage_for(exc.function) == "code" else missing).append(exc.function)
    if not_ours:
        names = ", ".join(state.function(name).function_name for name in not_ours)
        raise NotFound(
            f"{names} {'does' if len(not_ours) == 1 else 'do'} not exist in {env.name} (account {env.account}); "
            "relay manages only the code there (manage = \"code\") and never creates a function",
            hint="Deploy the infrastructure code that owns it first, or set "
                 + ", ".join(f'environments.{env.name}.functions.{name}.manage = "all"' for name in not_ours)
                 + " (with a role) to let relay create it.",
        )
    if missing:
        names = ", ".join(state.function(name).function_name for name in missing)
        raise NotFound(
            f"{names} {'does' if len(missing) == 1 else 'do'} not exist in {env.name} (account {env.account}) "
            "and relay.toml gives no role to create it",
            hint=f"Create {'it' if len(missing) == 1 else 'them'} there, or set "
                 f"{', '.join(f'functions.{name}.role' for name in missing)} (it may use {{account}} and {{region}}).",
        )
    return Plan(event="promote", app=release.app, env=env.name, account=env.account, region=env.region,
                alias=env.alias, to_version=release.version, layers=layers, functions=functions,
                canary=env.canary, alarms=env.alarms)


def _layer_steps(release: Release, entries: Sequence[ReleaseFunction], state: RemoteState) -> list[LayerStep]:
    bundles = sorted({bundle for entry in entries for bundle in entry.layers})
    steps: list[LayerStep] = []
    for bundle in bundles:
        layer = release.layer(bundle)
        if layer is None:
            raise VerificationFailed(f"{release.app}@{release.version}: a function needs {bundle}, which the release lacks")
        aws_name = layer_name_in_aws(release.app, layer.name)
        found = state.layers[aws_name].find(layer.sha256, layer.architecture) if aws_name in state.layers else None
        if found is None:
            steps.append(PublishLayer(bundle, layer.name, aws_name, layer.architecture, release.runtime, layer.sha256))
        else:
            steps.append(ReuseLayer(bundle, layer.name, aws_name, layer.architecture, layer.sha256, found.arn))
    return steps


class _CannotCreate(Exception):
    def __init__(self, function: str) -> None:
        super().__init__(function)
        self.function = function


def recorded_settings(project: Project, release: Release, entry: ReleaseFunction,
                      layers: Mapping[str, LayerRef]) -> FunctionSettings:
    """The function's settings as the signed release records them, its layers resolved (relay's by digest, then ARNs).

    A release published before relay recorded settings has none: relay.toml's (the checkout's) stand in, with the
    release's own handler, runtime, architecture and layers, as before.
    """
    if entry.settings is not None:
        return attrs.evolve(entry.settings, layers=tuple(layers[item] if item in layers else LayerRef.at(item)
                                                         for item in entry.layer_entries))
    config = project.functions.get(entry.name)
    if config is None:
        raise ConfigError(f"{release.app}@{release.version} has function {entry.name!r}, which relay.toml does not declare",
                          hint="Promote a release built from this config, or add the function back to relay.toml.")
    return attrs.evolve(config.settings, handler=entry.handler, runtime=release.runtime, architecture=entry.architecture,
                        layers=tuple(layers[bundle] for bundle in entry.layers))


def desired_settings(project: Project, env: Environment, release: Release, entry: ReleaseFunction,
                     layers: Mapping[str, LayerRef]) -> FunctionSettings:
    """The settings the function gets in `env`: the release's, `env`'s overrides, placeholders filled in."""
    return settings_in_environment(recorded_settings(project, release, entry, layers), env.overrides_for(entry.name),
                                   env.placeholders(release.app, entry.name))


def settings_source(entry: ReleaseFunction, manage: str) -> str:
    """Where a function's settings come from: "release", "relay.toml" (an older release), or "$LATEST" (code only)."""
    if manage == "code":
        return "$LATEST"
    return "release" if entry.settings is not None else "relay.toml"


def code_only_settings(state: RemoteState, latest: FunctionConfig, entry: ReleaseFunction) -> FunctionSettings:
    """For a function infrastructure code owns: `$LATEST`'s own settings, with the architecture the code is built for."""
    return attrs.evolve(state.settings_of(latest), architecture=entry.architecture)


def _function_plan(project: Project, env: Environment, release: Release, entry: ReleaseFunction,
                   state: RemoteState, layers: Mapping[str, LayerRef]) -> FunctionPlan:
    current = state.function(entry.name)
    code_only = env.manage_for(entry.name) == "code"
    if code_only and current.latest is None:
        raise _CannotCreate(entry.name)
    desired = (code_only_settings(state, current.latest, entry) if code_only and current.latest is not None
               else desired_settings(project, env, release, entry, layers))
    base = dict(function=entry.name, function_name=current.function_name, artifact=release.version, sha256=entry.sha256,
                manage=env.manage_for(entry.name), **_from_fields(current, release.app),
                settings=desired, settings_from=settings_source(entry, env.manage_for(entry.name)),
                settings_overridden=differing_values(desired, recorded_settings(project, release, entry, layers))
                if not code_only else {},
                function_level=None if code_only else function_level_step(desired, current))
    publish = PublishVersion(VersionMark(release.app, entry.name, release.version, entry.sha256), desired)
    wanted = env.provisioned_concurrency_for(entry.name)
    provisioned = {"provisioned": wanted, "provisioned_from": current.provisioned}
    if not current.exists:
        role = project.functions[entry.name].role_in(env.account, env.region)
        if not role:
            raise _CannotCreate(entry.name)
        return FunctionPlan(version=publish, steps=(CreateFunction(entry.sha256, desired, role),),
                            alias=_move(current, release.version, entry.sha256, None, (), **provisioned), **base)
    matching = [v for v in current.versions
                if v.carries(release.app, entry.name, entry.sha256) and not desired.differences(state.settings_of(v.config))]
    live = current.live
    if live is not None and live in matching and not (current.alias and current.alias.weights):
        if wanted is not None and wanted != current.provisioned:
            # Only the alias's provisioned concurrency changes: the alias is "moved" onto the version it serves.
            return FunctionPlan(version=ReuseVersion(live.number, "already live"),
                                alias=_move(current, release.version, entry.sha256, live.number,
                                            _history(current, live.number), **provisioned), **base)
        return FunctionPlan(version=ReuseVersion(live.number, "already live"), **base)
    if matching:
        target = matching[-1]  # the newest
        return FunctionPlan(version=ReuseVersion(target.number, f"reuses version {target.number}"),
                            alias=_move(current, release.version, entry.sha256, target.number, _history(current, target.number),
                                        **provisioned),
                            **base)
    latest = current.latest
    assert latest is not None
    return FunctionPlan(version=publish, steps=_updates(entry, desired, state.settings_of(latest), latest.code_sha256,
                                                        latest.revision_id, code_only=code_only),
                        alias=_move(current, release.version, entry.sha256, None, _history(current, None), **provisioned),
                        **base)


def function_level_step(desired: FunctionSettings, current: FunctionState) -> SetFunctionLevel | None:
    """Tags and reserved concurrency to set on the function, where they differ from what it has (None: nothing).

    Not read (an existing function whose state was read without them): None. A function about to be created has
    none yet. Tags relay never set are left alone (`builder.settings.tag_changes`); reserved concurrency only when
    the settings give one.
    """
    level = current.function_level
    if current.exists and level is None:
        return None
    to_set, removed = tag_changes(desired.tags, dict(level.tags) if level else {})
    found_reserved = level.reserved_concurrency if level else None
    sets = desired.reserved_concurrency is not None and desired.reserved_concurrency != found_reserved
    if not (to_set or removed or sets):
        return None
    return SetFunctionLevel(function_arn=level.arn if level else None, tags_set=to_set, tags_removed=removed,
                            reserved_concurrency=desired.reserved_concurrency if sets else None,
                            reserved_concurrency_from=found_reserved, sets_concurrency=sets)


def _updates(entry: ReleaseFunction, desired: FunctionSettings, latest: FunctionSettings, latest_code: str,
             revision_id: str | None, *, code_only: bool = False) -> tuple[FunctionStep, ...]:
    """What `$LATEST` needs before it is published: its configuration, then its code (with the code's settings).

    `code_only` (infrastructure code owns the function): never its configuration.
    """
    differences = desired.differences(latest)
    with_code = code_settings()
    steps: list[FunctionStep] = []
    changes = tuple(name for name in differences if name not in with_code)
    if changes and not code_only:
        steps.append(UpdateConfiguration(desired, changes, revision_id))
    if latest_code != code_sha256_of(entry.sha256) or any(name in with_code for name in differences):
        steps.append(UpdateCode(entry.sha256, desired, revision_id))
    return tuple(steps)


def _move(current: FunctionState, artifact: str | None, sha256: str | None, to_version: str | None,
          history: tuple[str, ...], *, provisioned: int | None = None, provisioned_from: int | None = None) -> MoveAlias:
    alias = current.alias
    return MoveAlias(
        function=current.function, function_name=current.function_name, artifact=artifact, sha256=sha256,
        to_version=to_version, alias_exists=alias is not None,
        alias_from=alias.function_version if alias else None, alias_weights=alias.weights if alias else (),
        alias_description=alias.description if alias else "", alias_revision=alias.revision_id if alias else None,
        history=history, provisioned=provisioned, provisioned_from=provisioned_from,
    )


def _from_fields(current: FunctionState, app: str) -> dict:
    """What the function serves now, by the live version's trusted mark."""
    live = current.live
    mark = live.mark if live is not None and live.trusted_digest else None
    return {"from_artifact": mark.version if mark and mark.app == app else None,
            "from_digest": live.trusted_digest if live is not None else None}


def _history(current: FunctionState, target: str | None) -> tuple[str, ...]:
    """The alias mark's history after moving to `target` (None: a version not yet published)."""
    alias = current.alias
    if alias is None:
        return ()
    mark = current.alias_mark
    earlier = mark.history() if mark is not None else ()
    if alias.function_version == target:
        return earlier  # finishing a canary, or the same version: nothing new to remember
    return (alias.function_version, *earlier)


# -- rollback ----------------------------------------------------------------------------------------


@attrs.frozen
class RollbackTarget:
    """Where one function's alias goes back to, and why."""

    function: str
    version: str  # Lambda version
    source: str  # "ledger" | "alias" | "--to"
    history: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)  # the alias mark's history afterwards
    expected_digest: str | None = None  # what the ledger or the registry says that version holds


def plan_rollback(app: str, env: Environment, state: RemoteState, targets: Sequence[RollbackTarget], *,
                  to_version: str | None = None) -> Plan:
    """Alias moves back to existing versions; each must still hold the bytes its description names."""
    functions: list[FunctionPlan] = []
    problems = []
    for target in targets:
        current = state.function(target.function)
        version = current.version(target.version)
        if not current.exists or version is None:
            problems.append(f"{target.function}: Lambda version {target.version} of {current.function_name} does not exist")
            continue
        digest = version.trusted_digest
        if digest is None:
            problems.append(f"{target.function}: version {target.version}'s CodeSha256 {version.config.code_sha256} "
                            "does not match the digest its description names (or it has no relay description)")
            continue
        if target.expected_digest and digest != target.expected_digest:
            problems.append(f"{target.function}: version {target.version} holds sha256 {digest[:12]}.., "
                            f"the {target.source} says {target.expected_digest[:12]}..")
            continue
        artifact = version.mark.version if version.mark else None
        unchanged = current.alias is not None and current.alias.function_version == target.version and not current.alias.weights
        functions.append(FunctionPlan(
            function=target.function, function_name=current.function_name, artifact=artifact, sha256=digest,
            version=ReuseVersion(target.version, f"from the {target.source}"),
            alias=None if unchanged else _move(current, artifact, digest, target.version, target.history),
            **_from_fields(current, app),
        ))
    if problems:
        raise VerificationFailed("rollback refused: " + "; ".join(problems),
                                 hint="Nothing was changed. Roll back with --to VERSION, or promote a release.")
    artifacts = {f.artifact for f in functions}
    return Plan(event="rollback", app=app, env=env.name, account=env.account, region=env.region, alias=env.alias,
                to_version=to_version or (artifacts.pop() if len(artifacts) == 1 else None), layers=(),
                functions=functions, canary=None, alarms=())
