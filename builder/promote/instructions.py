"""The promotion plan as typed instructions: what the planner decides and the executor carries out.

A plan is frozen data. Per layer: publish it in the account, or reuse a layer
version that carries its digest. Per function: the steps that prepare a
version (create the function, update its configuration, update its code),
then either publish a version or reuse one, then move its alias (or leave it,
when it already serves that version). The executor dispatches on the class of
each instruction; `--dry-run` renders them and stops.

`FunctionPlan.action` ("create", "deploy", "switch", "unchanged") is a word
for people and `--json`, derived from the instructions, never decided on.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from builder.config import Canary
from builder.frozen import to_tuple
from builder.promote.records import FunctionChange
from builder.promote.state import AliasMark, VersionMark, code_sha256_of
from builder.settings import FunctionSettings, LayerRef, settings_digest

# -- layers -------------------------------------------------------------------------------------------


@attrs.frozen
class PublishLayer:
    """Publish the layer bundle as a new layer version in the account (layers are per account)."""

    bundle: str  # "layer-common-x86_64"
    name: str  # config name, "common"
    layer_name: str  # in AWS, "shop-common"
    architecture: str
    runtime: str
    sha256: str

    @property
    def ref(self) -> LayerRef:
        return LayerRef(self.sha256, self.architecture)

    def to_json(self) -> dict:
        return {"do": "publish_layer", "action": "publish", "bundle": self.bundle, "layer_name": self.layer_name,
                "architecture": self.architecture, "sha256": self.sha256, "arn": None}


@attrs.frozen
class ReuseLayer:
    """A layer version carrying the bundle's digest is there already."""

    bundle: str
    name: str
    layer_name: str
    architecture: str
    sha256: str
    arn: str

    @property
    def ref(self) -> LayerRef:
        return LayerRef(self.sha256, self.architecture, self.arn)

    def to_json(self) -> dict:
        return {"do": "reuse_layer", "action": "reuse", "bundle": self.bundle, "layer_name": self.layer_name,
                "architecture": self.architecture, "sha256": self.sha256, "arn": self.arn}


LayerStep = PublishLayer | ReuseLayer


# -- preparing a function's version -------------------------------------------------------------------


@attrs.frozen
class CreateFunction:
    """Create the function with its code and settings (the layers' ARNs are filled in when known)."""

    sha256: str
    settings: FunctionSettings
    role: str

    def to_json(self) -> dict:
        return {"do": "create_function", "sha256": self.sha256, "role": self.role, "settings": self.settings.to_json()}


@attrs.frozen
class UpdateConfiguration:
    """Set the function's configuration; conditional on the revision the plan read."""

    settings: FunctionSettings
    changes: tuple[str, ...] = attrs.field(converter=to_tuple)  # names of the settings that differ
    revision_id: str | None = None

    def to_json(self) -> dict:
        return {"do": "update_configuration", "changes": list(self.changes), "settings": self.settings.to_json()}


@attrs.frozen
class UpdateCode:
    """Upload the code from the verified registry blob, with the settings that travel with it (architecture)."""

    sha256: str
    settings: FunctionSettings
    revision_id: str | None = None

    def to_json(self) -> dict:
        return {"do": "update_code", "sha256": self.sha256, "architecture": self.settings.architecture}


FunctionStep = CreateFunction | UpdateConfiguration | UpdateCode


@attrs.frozen
class PublishVersion:
    """Publish `$LATEST` as a version holding these bytes and settings, described with relay's mark."""

    mark: VersionMark
    settings: FunctionSettings

    def to_json(self) -> dict:
        return {"do": "publish_version", "description": self.mark.render()}


@attrs.frozen
class ReuseVersion:
    """A published version already holds the release's bytes and settings."""

    version: str  # the Lambda version
    why: str  # "already live", "reuses version 3", "from the ledger"

    def to_json(self) -> dict:
        return {"do": "reuse_version", "version": self.version, "why": self.why}


VersionStep = PublishVersion | ReuseVersion


@attrs.frozen
class SetFunctionLevel:
    """Set the function's tags and reserved concurrency (function-level: not part of any version), before the alias moves.

    Emitted only for what differs from what the account has; tags set by anyone else are never touched.
    """

    function_arn: str | None  # None: the function this run creates (its ARN is read once it exists)
    tags_set: dict = attrs.field(factory=dict, hash=False)  # key -> value (relay's record `relay:managed-tags` too)
    tags_removed: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)  # keys relay set before, now dropped
    reserved_concurrency: int | None = None  # to put, when `sets_concurrency`
    reserved_concurrency_from: int | None = None
    sets_concurrency: bool = False

    @property
    def changes(self) -> tuple[str, ...]:
        return (*(("tags",) if self.tags_set or self.tags_removed else ()),
                *(("reserved_concurrency",) if self.sets_concurrency else ()))

    def to_json(self) -> dict:
        return {"do": "set_function_level", "tags_set": dict(self.tags_set), "tags_removed": list(self.tags_removed),
                "reserved_concurrency": {"from": self.reserved_concurrency_from, "to": self.reserved_concurrency}
                if self.sets_concurrency else None}


@attrs.frozen
class MoveAlias:
    """Point the function's alias at its version (create the alias when it does not exist)."""

    function: str
    function_name: str
    artifact: str | None  # the app version it will serve
    sha256: str | None
    to_version: str | None  # the Lambda version; None: the one this run publishes
    alias_exists: bool = False
    alias_from: str | None = None  # the Lambda version it points at now
    alias_weights: tuple[tuple[str, float], ...] = attrs.field(default=(), converter=to_tuple)
    alias_description: str = ""  # as it is now, to put back if the run is undone
    alias_revision: str | None = None  # its RevisionId as the plan read it: every move is conditional on it
    history: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)  # for the new alias mark, newest first
    # The alias's provisioned concurrency: what the environment wants (None: relay leaves it alone) and what it is.
    provisioned: int | None = None
    provisioned_from: int | None = None

    @property
    def sets_provisioned(self) -> bool:
        return self.provisioned is not None and self.provisioned != self.provisioned_from

    def alias_mark(self, app: str) -> AliasMark:
        return AliasMark(app, self.artifact, self.sha256, self.history[0] if self.history else None, self.history[1:])

    def to_json(self) -> dict:
        return {"do": "move_alias", "create": not self.alias_exists, "from": self.alias_from, "to": self.to_version,
                "weights": dict(self.alias_weights),
                "provisioned_concurrency": {"from": self.provisioned_from, "to": self.provisioned}
                if self.provisioned is not None else None}


@attrs.frozen
class FunctionPlan:
    """One function: the steps that prepare its version, the version, and the alias move."""

    function: str  # config name
    function_name: str  # in AWS
    artifact: str | None  # the app version it will serve
    sha256: str | None
    version: VersionStep
    steps: tuple[FunctionStep, ...] = attrs.field(default=(), converter=to_tuple)
    alias: MoveAlias | None = None  # None: the alias already serves the version
    from_artifact: str | None = None
    from_digest: str | None = None
    manage: str = "all"  # "code": infrastructure code owns its configuration; relay changes its code only
    # What it ends up with in the environment, where that comes from ("release", "relay.toml" for a release that
    # records none, "$LATEST" for manage = "code"), and the values the environment changed from the release's.
    settings: FunctionSettings | None = None
    settings_from: str = "release"
    settings_overridden: dict = attrs.field(factory=dict, hash=False)
    function_level: SetFunctionLevel | None = None  # tags / reserved concurrency to set (None: as they are)

    @property
    def publishes(self) -> bool:
        return isinstance(self.version, PublishVersion)

    @property
    def moves_alias(self) -> bool:
        return self.alias is not None

    @property
    def target_version(self) -> str | None:
        """The Lambda version it ends on, when it exists already."""
        return self.version.version if isinstance(self.version, ReuseVersion) else None

    @property
    def from_version(self) -> str | None:
        """The Lambda version the alias points at now."""
        return self.alias.alias_from if self.alias is not None else self.target_version

    @property
    def note(self) -> str:
        return self.version.why if isinstance(self.version, ReuseVersion) else ""

    @property
    def code_sha256(self) -> str | None:
        return code_sha256_of(self.sha256) if self.sha256 else None

    @property
    def action(self) -> str:
        if any(isinstance(step, CreateFunction) for step in self.steps):
            return "create"
        if self.publishes:
            return "deploy"
        if self.moves_alias:
            return "switch"
        return "configure" if self.function_level is not None else "unchanged"

    @property
    def instructions(self) -> tuple[FunctionStep | VersionStep | SetFunctionLevel | MoveAlias, ...]:
        return (*self.steps, self.version, *((self.function_level,) if self.function_level is not None else ()),
                *((self.alias,) if self.alias is not None else ()))

    def change(self, to_version: str | None) -> FunctionChange:
        return FunctionChange(function=self.function, from_version=self.from_version, to_version=to_version,
                              from_artifact=self.from_artifact, to_artifact=self.artifact,
                              from_digest=self.from_digest, to_digest=self.sha256,
                              settings_sha256=settings_digest(self.settings) if self.settings is not None else None,
                              settings=self.settings_overridden or None)

    def to_json(self) -> dict:
        return {
            "function": self.function, "function_name": self.function_name, "action": self.action,
            "artifact": self.artifact, "sha256": self.sha256, "target_version": self.target_version,
            "from_version": self.from_version, "from_artifact": self.from_artifact, "from_digest": self.from_digest,
            "note": self.note, "manage": self.manage, "instructions": [step.to_json() for step in self.instructions],
            "settings": self.settings.to_json() if self.settings is not None else None,
            "settings_from": self.settings_from, "settings_overridden": self.settings_overridden,
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
    layers: tuple[LayerStep, ...] = attrs.field(converter=to_tuple)
    functions: tuple[FunctionPlan, ...] = attrs.field(converter=to_tuple)
    canary: Canary | None = None
    alarms: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)

    @property
    def from_version(self) -> str | None:
        """The app version live before, when every function of the plan served the same one."""
        found = {f.from_artifact for f in self.functions}
        return found.pop() if len(found) == 1 else None

    @property
    def is_noop(self) -> bool:
        return (not self.moving and not any(isinstance(layer, PublishLayer) for layer in self.layers)
                and not any(f.function_level is not None for f in self.functions))

    @property
    def moving(self) -> tuple[MoveAlias, ...]:
        return tuple(f.alias for f in self.functions if f.alias is not None)

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
            "layers": [layer.to_json() for layer in self.layers],
            "functions": [f.to_json() for f in self.functions],
        }
