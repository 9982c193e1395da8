"""The planner (pure): a release (or rollback targets) + the remote state -> a frozen Plan.

No AWS here: `plan_promotion` and `plan_rollback` read a `RemoteState` and
return data. `relay promote --dry-run` prints the plan; the executor applies
it. Rollback is a plan too: only alias moves to versions that already exist.

What makes a published Lambda version "the release's" for a function: its
description carries the function's digest and its `CodeSha256` is that
digest (the bytes), its layers are the layer versions carrying the digests
the release pins, and its handler, runtime, architecture, memory, timeout
and environment are what the release and relay.toml say. Such a version is
reused rather than published again, which is what makes a re-run of a
promotion that died half-way finish the job instead of repeating it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from builder.config import Canary, Environment, Project
from builder.errors import ConfigError, NotFound, VerificationFailed
from builder.frozen import to_tuple
from builder.promote.records import FunctionChange
from builder.promote.state import AliasMark, FunctionState, PublishedVersion, RemoteState, VersionMark, code_sha256_of
from builder.registry.release import Release, ReleaseFunction
from builder.textfmt import table

UNCHANGED = "unchanged"  # the alias already serves the release's version: nothing to do
SWITCH = "switch"  # a version of the release exists: move the alias to it
DEPLOY = "deploy"  # update the function, publish a version, move the alias
CREATE = "create"  # create the function, publish a version, create the alias
ACTIONS = (UNCHANGED, SWITCH, DEPLOY, CREATE)


def layer_name_in_aws(app: str, layer: str) -> str:
    return f"{app}-{layer}"


@attrs.frozen
class LayerAction:
    bundle: str  # "layer-common-x86_64"
    name: str  # config name, "common"
    layer_name: str  # in AWS, "shop-common"
    architecture: str
    runtime: str
    sha256: str
    reuse_arn: str | None  # a layer version carrying the digest; None: publish one

    @property
    def publishes(self) -> bool:
        return self.reuse_arn is None

    def to_json(self) -> dict:
        return {"bundle": self.bundle, "layer_name": self.layer_name, "architecture": self.architecture,
                "sha256": self.sha256, "action": "publish" if self.publishes else "reuse", "arn": self.reuse_arn}


@attrs.frozen
class Desired:
    """What the function's configuration must be (besides its code)."""

    handler: str
    runtime: str
    architecture: str
    memory: int
    timeout: int
    environment: tuple[tuple[str, str], ...] = attrs.field(converter=lambda v: tuple(sorted(dict(v).items())))
    layers: tuple[str, ...] = attrs.field(converter=to_tuple)  # layer bundle names, in order
    layer_keys: tuple[tuple[str, str], ...] = attrs.field(converter=to_tuple)  # (sha256, architecture) of each
    role: str | None = None  # only used to create the function
    description: str = ""

    def to_json(self) -> dict:
        return {"handler": self.handler, "runtime": self.runtime, "architecture": self.architecture,
                "memory": self.memory, "timeout": self.timeout, "environment": dict(self.environment),
                "layers": list(self.layers), "role": self.role}


@attrs.frozen
class FunctionAction:
    function: str
    function_name: str
    action: str = attrs.field(validator=attrs.validators.in_(ACTIONS))
    artifact: str | None  # app version the function will serve
    sha256: str | None
    target_version: str | None  # an existing Lambda version to point at (unchanged, switch)
    desired: Desired | None = None  # deploy, create
    update_code: bool = False
    config_changes: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    alias_exists: bool = False
    alias_from: str | None = None  # Lambda version the alias points at now
    alias_weights: tuple[tuple[str, float], ...] = attrs.field(default=(), converter=to_tuple)
    alias_description: str = ""  # as it was, to put back if the run is undone
    history: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)  # for the new alias mark, newest first
    from_artifact: str | None = None
    from_digest: str | None = None
    revision_id: str | None = None  # of $LATEST when read: the first update is conditional on it
    note: str = ""

    @property
    def code_sha256(self) -> str | None:
        return code_sha256_of(self.sha256) if self.sha256 else None

    @property
    def moves_alias(self) -> bool:
        return self.action != UNCHANGED

    @property
    def publishes(self) -> bool:
        return self.action in (DEPLOY, CREATE)

    def mark(self, app: str) -> VersionMark:
        assert self.artifact and self.sha256
        return VersionMark(app, self.function, self.artifact, self.sha256)

    def alias_mark(self, app: str) -> AliasMark:
        return AliasMark(app, self.artifact, self.sha256, self.history[0] if self.history else None, self.history[1:])

    def change(self, to_version: str | None) -> FunctionChange:
        return FunctionChange(function=self.function, from_version=self.alias_from, to_version=to_version,
                              from_artifact=self.from_artifact, to_artifact=self.artifact,
                              from_digest=self.from_digest, to_digest=self.sha256)

    def to_json(self) -> dict:
        return {
            "function": self.function, "function_name": self.function_name, "action": self.action,
            "artifact": self.artifact, "sha256": self.sha256, "target_version": self.target_version,
            "update_code": self.update_code, "config_changes": list(self.config_changes),
            "alias": {"exists": self.alias_exists, "from": self.alias_from, "weights": dict(self.alias_weights)},
            "from_artifact": self.from_artifact, "from_digest": self.from_digest,
            "desired": self.desired.to_json() if self.desired else None, "note": self.note,
        }


@attrs.frozen
class Plan:
    event: str  # "promote" | "rollback"
    app: str
    env: str
    account: str
    region: str
    alias: str
    to_version: str | None  # app version
    layers: tuple[LayerAction, ...] = attrs.field(converter=to_tuple)
    functions: tuple[FunctionAction, ...] = attrs.field(converter=to_tuple)
    canary: Canary | None = None
    alarms: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)

    @property
    def from_version(self) -> str | None:
        """The app version live before, when every function of the plan served the same one."""
        found = {f.from_artifact for f in self.functions}
        return found.pop() if len(found) == 1 else None

    @property
    def is_noop(self) -> bool:
        return not any(f.moves_alias for f in self.functions) and not any(l.publishes for l in self.layers)

    @property
    def moving(self) -> tuple[FunctionAction, ...]:
        return tuple(f for f in self.functions if f.moves_alias)

    def changes(self, versions: Mapping[str, str] | None = None) -> tuple[FunctionChange, ...]:
        """The ledger's view: every function of the plan, with the Lambda versions it ends on."""
        versions = versions or {}
        return tuple(f.change(versions.get(f.function, f.target_version)) for f in self.functions)

    def to_json(self) -> dict:
        return {
            "event": self.event, "app": self.app, "env": self.env, "account": self.account, "region": self.region,
            "alias": self.alias, "from_version": self.from_version, "to_version": self.to_version,
            "noop": self.is_noop,
            "canary": {"steps": list(self.canary.steps), "interval": self.canary.interval} if self.canary else None,
            "alarms": list(self.alarms),
            "layers": [l.to_json() for l in self.layers],
            "functions": [f.to_json() for f in self.functions],
        }

    def summary(self) -> str:
        what = f"{self.event} {self.app} {self.from_version or '-'} -> {self.to_version or '-'}"
        head = f"Plan: {what} in {self.env} (account {self.account}, {self.region}, alias {self.alias})"
        rows = [[f.function, f.action, f"{f.alias_from or '-'} -> {f.target_version or ('new' if f.publishes else '-')}",
                 f.artifact or "-", (f.sha256 or "")[:12], _work(f)] for f in self.functions]
        lines = [head, "", table(rows, ["function", "action", "alias", "artifact", "sha256", "work"])]
        if self.layers:
            layer_rows = [[l.bundle, l.layer_name, "publish" if l.publishes else f"reuse {l.reuse_arn.rsplit(':', 1)[-1]}",
                           l.sha256[:12]] for l in self.layers]
            lines += ["", table(layer_rows, ["layer", "in AWS", "action", "sha256"])]
        if self.canary and self.moving:
            steps = " -> ".join(f"{s}%" for s in self.canary.steps)
            lines += ["", f"Canary: {steps}, {self.canary.interval}s per step, watching {', '.join(self.alarms) or 'no alarms'}"]
        if self.is_noop:
            lines += ["", "Nothing to do: every alias already serves this release."]
        return "\n".join(lines)


def _work(f: FunctionAction) -> str:
    if f.action == UNCHANGED:
        return f.note or "-"
    parts = []
    if f.action == CREATE:
        parts.append("create function")
    else:
        if f.update_code:
            parts.append("update code")
        if f.config_changes:
            parts.append("set " + ",".join(f.config_changes))
    if f.publishes:
        parts.append("publish version")
    parts.append("create alias" if not f.alias_exists else "move alias")
    return "; ".join(parts) + (f" ({f.note})" if f.note else "")


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
    layers = _layer_actions(release, entries, state)
    actions, missing = [], []
    for entry in entries:
        try:
            actions.append(_function_action(project, env, release, entry, state))
        except _CannotCreate as exc:
            missing.append(exc.function)
    if missing:
        names = ", ".join(state.function(name).function_name for name in missing)
        raise NotFound(
            f"{names} {'does' if len(missing) == 1 else 'do'} not exist in {env.name} (account {env.account}) "
            "and relay.toml gives no role to create it",
            hint=f"Create {'it' if len(missing) == 1 else 'them'} there, or set "
                 f"{', '.join(f'functions.{name}.role' for name in missing)} (it may use {{account}} and {{region}}).",
        )
    return Plan(event="promote", app=release.app, env=env.name, account=env.account, region=env.region,
                alias=env.alias, to_version=release.version, layers=layers, functions=actions,
                canary=env.canary, alarms=env.alarms)


def _layer_actions(release: Release, entries: Sequence[ReleaseFunction], state: RemoteState) -> list[LayerAction]:
    bundles = sorted({bundle for entry in entries for bundle in entry.layers})
    actions = []
    for bundle in bundles:
        layer = release.layer(bundle)
        if layer is None:
            raise VerificationFailed(f"{release.app}@{release.version}: a function needs {bundle}, which the release lacks")
        aws_name = layer_name_in_aws(release.app, layer.name)
        found = state.layers[aws_name].find(layer.sha256, layer.architecture) if aws_name in state.layers else None
        actions.append(LayerAction(bundle, layer.name, aws_name, layer.architecture, release.runtime, layer.sha256,
                                   found.arn if found else None))
    return actions


class _CannotCreate(Exception):
    def __init__(self, function: str) -> None:
        super().__init__(function)
        self.function = function


def _function_action(project: Project, env: Environment, release: Release, entry: ReleaseFunction,
                     state: RemoteState) -> FunctionAction:
    config = project.functions.get(entry.name)
    if config is None:
        raise ConfigError(f"{release.app}@{release.version} has function {entry.name!r}, which relay.toml does not declare",
                          hint="Promote a release built from this config, or add the function back to relay.toml.")
    current = state.function(entry.name)
    desired = Desired(
        handler=entry.handler, runtime=release.runtime, architecture=entry.architecture, memory=config.memory,
        timeout=config.timeout, environment=config.environment, layers=entry.layers,
        layer_keys=tuple((release.layer(b).sha256, release.layer(b).architecture) for b in entry.layers if release.layer(b)),
        role=config.role_in(env.account, env.region), description=config.description,
    )
    base = dict(function=entry.name, function_name=current.function_name, artifact=release.version, sha256=entry.sha256,
                **_alias_fields(current, release.app))
    if not current.exists:
        if not desired.role:
            raise _CannotCreate(entry.name)
        return FunctionAction(action=CREATE, target_version=None, desired=desired, update_code=True,
                              config_changes=("all",), history=(), **base)
    matching = [v for v in current.versions if _serves(v, release.app, entry.name, entry.sha256, desired, state)]
    live = current.live
    if live is not None and live in matching and not current.alias.weights:
        return FunctionAction(action=UNCHANGED, target_version=live.number, note="already live", history=(), **base)
    if matching:
        target = matching[-1]  # the newest
        return FunctionAction(action=SWITCH, target_version=target.number, note=f"reuses version {target.number}",
                              history=_history(current, target.number), **base)
    latest = current.latest
    assert latest is not None
    return FunctionAction(
        action=DEPLOY, target_version=None, desired=desired,
        update_code=latest.code_sha256 != code_sha256_of(entry.sha256) or latest.architecture != entry.architecture,
        config_changes=_config_changes(latest, desired, state), history=_history(current, None),
        revision_id=latest.revision_id, **base,
    )


def _alias_fields(current: FunctionState, app: str) -> dict:
    alias = current.alias
    if alias is None:
        return {"alias_exists": False, "alias_from": None, "alias_weights": (), "alias_description": "",
                "from_artifact": None, "from_digest": None}
    live = current.live
    mark = live.mark if live is not None and live.trusted_digest else None
    return {"alias_exists": True, "alias_from": alias.function_version, "alias_weights": alias.weights,
            "alias_description": alias.description,
            "from_artifact": mark.version if mark and mark.app == app else None,
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


def _serves(version: PublishedVersion, app: str, function: str, sha256: str, desired: Desired, state: RemoteState) -> bool:
    if not version.carries(app, function, sha256):
        return False
    config = version.config
    return (_layer_keys(config, state) == desired.layer_keys and config.handler == desired.handler
            and config.runtime == desired.runtime and config.architecture == desired.architecture
            and config.memory == desired.memory and config.timeout == desired.timeout
            and config.environment == desired.environment)


def _config_changes(latest, desired: Desired, state: RemoteState) -> tuple[str, ...]:
    changes = []
    if latest.handler != desired.handler:
        changes.append("handler")
    if latest.runtime != desired.runtime:
        changes.append("runtime")
    if latest.memory != desired.memory:
        changes.append("memory")
    if latest.timeout != desired.timeout:
        changes.append("timeout")
    if latest.environment != desired.environment:
        changes.append("environment")
    if _layer_keys(latest, state) != desired.layer_keys:
        changes.append("layers")
    return tuple(changes)


def _layer_keys(config, state: RemoteState) -> tuple:
    return tuple(state.layer_identity(arn) for arn in config.layers)


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
    actions = []
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
        fields = _alias_fields(current, app)
        unchanged = current.alias is not None and current.alias.function_version == target.version and not current.alias.weights
        actions.append(FunctionAction(
            function=target.function, function_name=current.function_name,
            action=UNCHANGED if unchanged else SWITCH, artifact=version.mark.version if version.mark else None,
            sha256=digest, target_version=target.version, note=f"from the {target.source}",
            history=target.history, **fields,
        ))
    if problems:
        raise VerificationFailed("rollback refused: " + "; ".join(problems),
                                 hint="Nothing was changed. Roll back with --to VERSION, or promote a release.")
    artifacts = {a.artifact for a in actions}
    return Plan(event="rollback", app=app, env=env.name, account=env.account, region=env.region, alias=env.alias,
                to_version=to_version or (artifacts.pop() if len(artifacts) == 1 else None), layers=(),
                functions=actions, canary=None, alarms=())
