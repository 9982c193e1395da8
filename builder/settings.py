"""A function's deployable settings: one record the config produces, the planner compares and the AWS layer sends.

Each field declares next to itself how Lambda knows it (`setting(...)`): the
parameter of `CreateFunction`/`UpdateFunctionConfiguration` and the key of a
`FunctionConfiguration` reply (they are the same names), how a value is written
into a request and read back from a reply, whether it travels with the code
rather than the configuration (`Architectures` is set by `CreateFunction` and
`UpdateFunctionCode`, never by `UpdateFunctionConfiguration`), and whether the
planner compares it. `builder/aws/lambda_.py` turns a record into request
parameters and a reply back into a record from these declarations alone, and
the planner compares two records with `differences`, so adding a setting is:
the config schema, the line of `builder/config.py` that loads it, and a field
here.

Layers are compared by what relay put in them (the layer bundle's sha256 and
architecture, in order), not by ARN: a layer version is per account, and the
same bytes published again get another ARN. A reply names layers by ARN only
(`LayerRef.at`); the remote state resolves them from the layer versions'
descriptions before anything is compared.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from builder.frozen import to_tuple

EPHEMERAL_STORAGE_MIN = 512  # MB, Lambda's /tmp: default and minimum
EPHEMERAL_STORAGE_MAX = 10240
_SETTING = "relay.setting"


@attrs.frozen
class Setting:
    """How Lambda knows one field of `FunctionSettings`."""

    aws: str  # the request parameter, and the reply's key
    to_aws: Callable[[Any], Any] = lambda value: value
    from_aws: Callable[[Any], Any] = lambda value: value
    with_code: bool = False  # sent with the code (CreateFunction, UpdateFunctionCode), not the configuration
    compared: bool = True  # part of what makes a published version "the release's"
    # Set on the function itself (TagResource, PutFunctionConcurrency), not in its configuration nor a version.
    function_level: bool = False


def setting(aws: str, *, default: Any = attrs.NOTHING, converter: Callable[[Any], Any] | None = None,
            validator: Any = None, to_aws: Callable[[Any], Any] | None = None,
            from_aws: Callable[[Any], Any] | None = None, with_code: bool = False, compared: bool = True,
            function_level: bool = False) -> Any:
    """An attrs field of `FunctionSettings`, with its Lambda mapping in the metadata."""
    declared = Setting(aws, with_code=with_code, compared=compared, function_level=function_level,
                       **{k: v for k, v in (("to_aws", to_aws), ("from_aws", from_aws)) if v is not None})
    return attrs.field(default=default, converter=converter, validator=validator, metadata={_SETTING: declared})


@attrs.frozen(eq=False)
class LayerRef:
    """One layer of a function: by its identity (bundle sha256 + architecture), and its ARN once known.

    Two refs are equal when they hold the same bytes for the same architecture,
    whatever their ARN; a ref relay cannot identify (a layer version without a
    relay description) is equal only to a ref with the same ARN.
    """

    sha256: str | None = None
    architecture: str | None = None
    arn: str | None = None  # the layer version in one account; None until it is published

    @classmethod
    def at(cls, arn: str) -> LayerRef:
        """A layer named by ARN only, as Lambda replies name them."""
        return cls(arn=arn)

    @property
    def identity(self) -> tuple[str, str | None]:
        return (self.sha256, self.architecture) if self.sha256 else ("arn", self.arn)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LayerRef) and self.identity == other.identity

    def __hash__(self) -> int:
        return hash(self.identity)

    def require_arn(self) -> str:
        if self.arn is None:
            raise ValueError(f"layer sha256:{self.sha256} ({self.architecture}) has no layer version ARN yet")
        return self.arn

    def to_json(self) -> dict:
        return {"sha256": self.sha256, "architecture": self.architecture, "arn": self.arn}


def _sorted_pairs(value: Mapping[str, str] | Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(dict(value).items()))


LOG_FORMATS = ("Text", "JSON")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
TRACING_MODES = ("PassThrough", "Active")
# Config keys of `logging` and `vpc` -> Lambda's keys in LoggingConfig / VpcConfig.
_LOGGING_KEYS = {"format": "LogFormat", "application_level": "ApplicationLogLevel", "system_level": "SystemLogLevel"}
_VPC_KEYS = {"subnet_ids": "SubnetIds", "security_group_ids": "SecurityGroupIds"}


def _logging_pairs(value: Mapping[str, str] | Any) -> tuple[tuple[str, str], ...]:
    """`logging` as sorted pairs; the default format ("Text" with no levels) is the empty record."""
    pairs = _sorted_pairs(value)
    return () if pairs == (("format", "Text"),) else pairs


def _logging_to_aws(pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    given = dict(pairs)
    return {"LogFormat": given.get("format", "Text"),
            **{aws: given[key] for key, aws in _LOGGING_KEYS.items() if key != "format" and key in given}}


def _logging_from_aws(reply: Mapping[str, str]) -> dict[str, str]:
    return {key: reply[aws] for key, aws in _LOGGING_KEYS.items() if reply.get(aws)}  # LogGroup is Lambda's, not ours


def _vpc_pairs(value: Mapping[str, Any] | Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(sorted((key, tuple(ids)) for key, ids in dict(value).items() if ids))


def _vpc_to_aws(pairs: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, list[str]]:
    given = dict(pairs)
    return {aws: list(given.get(key, ())) for key, aws in _VPC_KEYS.items()}  # empty lists detach the function


def _vpc_from_aws(reply: Mapping[str, Any]) -> dict[str, list[str]]:
    return {key: list(reply.get(aws) or ()) for key, aws in _VPC_KEYS.items()}


def _ephemeral_storage(_instance: object, _attribute: object, value: int) -> None:
    if not EPHEMERAL_STORAGE_MIN <= value <= EPHEMERAL_STORAGE_MAX:
        raise ValueError(f"ephemeral_storage must be {EPHEMERAL_STORAGE_MIN}..{EPHEMERAL_STORAGE_MAX} MB, got {value}")


@attrs.frozen
class FunctionSettings:
    """What relay deploys on a function besides its code."""

    handler: str = setting("Handler")
    runtime: str = setting("Runtime")
    architecture: str = setting("Architectures", default="x86_64", with_code=True,
                                to_aws=lambda arch: [arch], from_aws=lambda archs: archs[0] if archs else "x86_64")
    memory: int = setting("MemorySize", default=128)
    timeout: int = setting("Timeout", default=3)
    ephemeral_storage: int = setting("EphemeralStorage", default=EPHEMERAL_STORAGE_MIN, validator=_ephemeral_storage,
                                     to_aws=lambda size: {"Size": size}, from_aws=lambda storage: storage["Size"])
    environment: tuple[tuple[str, str], ...] = setting(
        "Environment", default=(), converter=_sorted_pairs,
        to_aws=lambda pairs: {"Variables": dict(pairs)}, from_aws=lambda env: env.get("Variables") or {})
    tracing: str = setting("TracingConfig", default="PassThrough", to_aws=lambda mode: {"Mode": mode},
                           from_aws=lambda config: config.get("Mode") or "PassThrough")
    logging: tuple[tuple[str, str], ...] = setting("LoggingConfig", default=(), converter=_logging_pairs,
                                                   to_aws=_logging_to_aws, from_aws=_logging_from_aws)
    vpc: tuple[tuple[str, tuple[str, ...]], ...] = setting("VpcConfig", default=(), converter=_vpc_pairs,
                                                           to_aws=_vpc_to_aws, from_aws=_vpc_from_aws)
    layers: tuple[LayerRef, ...] = setting(
        "Layers", default=(), converter=to_tuple,
        to_aws=lambda refs: [ref.require_arn() for ref in refs],
        from_aws=lambda found: [LayerRef.at(item["Arn"]) for item in found])
    # Function-level, not version settings (they never make a published version "not the release's"): the tags relay
    # sets on the function (`TagResource`; see `tag_changes` for the keys it removes) and its reserved concurrency
    # (`PutFunctionConcurrency`; None: relay leaves whatever the function has).
    tags: tuple[tuple[str, str], ...] = setting("Tags", default=(), converter=_sorted_pairs, compared=False,
                                                function_level=True)
    reserved_concurrency: int | None = setting("ReservedConcurrentExecutions", default=None, compared=False,
                                               function_level=True)
    # A published version's Description is relay's mark (which bytes it holds), not the function's own: not compared.
    description: str = setting("Description", default="", compared=False)

    def differences(self, other: FunctionSettings) -> tuple[str, ...]:
        """Names of the compared settings that differ from `other`'s, in declaration order (empty: the same)."""
        return tuple(field.name for field, declared in declared_settings()
                     if declared.compared and getattr(self, field.name) != getattr(other, field.name))

    def function_level_differences(self, other: FunctionSettings) -> tuple[str, ...]:
        """Names of the function-level settings (tags, reserved concurrency) that differ from `other`'s.

        `other` is what the function has; tags are compared by the keys this record sets (others' tags are not
        relay's), reserved concurrency only when this record sets one.
        """
        found = []
        if any(tag_changes(self.tags, dict(other.tags))):
            found.append("tags")
        if self.reserved_concurrency is not None and self.reserved_concurrency != other.reserved_concurrency:
            found.append("reserved_concurrency")
        return tuple(found)

    def with_layer_arns(self, arns: Mapping[tuple[str, str | None], str]) -> FunctionSettings:
        """A copy whose layers carry the ARN `arns` gives for their identity (layers published or found in one account)."""
        return attrs.evolve(self, layers=tuple(attrs.evolve(ref, arn=arns.get(ref.identity, ref.arn)) for ref in self.layers))

    def to_json(self) -> dict:
        doc: dict[str, Any] = {}
        for field, _ in declared_settings():
            value = getattr(self, field.name)
            if field.name in PAIRED:
                value = {key: list(item) if isinstance(item, tuple) else item for key, item in value}
            elif field.name == "layers":
                value = [ref.to_json() for ref in value]
            doc[field.name] = value
        return doc


PAIRED = ("environment", "logging", "vpc", "tags")  # fields held as sorted (key, value) pairs, written as objects


def declared_settings() -> Iterator[tuple[attrs.Attribute, Setting]]:
    """Every field of `FunctionSettings` with its Lambda mapping."""
    for field in attrs.fields(FunctionSettings):
        yield field, field.metadata[_SETTING]


def code_settings() -> tuple[str, ...]:
    """The settings that travel with the code: changing one means sending the code again."""
    return tuple(field.name for field, declared in declared_settings() if declared.with_code)


# -- what a release records, what an environment overrides --------------------------------------------

# Settings a release records per function, by field (= config key) name. Handler, runtime, architecture and
# relay's own layers are the release's fields already; `layers` is recorded as the config's ordered list of
# relay layer bundles and third-party layer version ARNs (`ReleaseFunction.layer_entries`).
RECORDED = ("memory", "timeout", "ephemeral_storage", "environment", "tracing", "logging", "vpc", "tags",
            "reserved_concurrency", "description")
# What `[environments.<env>.settings]` and `[environments.<env>.functions.<fn>]` may set (the published
# version's Description is relay's mark, so it is not an environment's).
OVERRIDABLE = tuple(name for name in RECORDED if name != "description")
_OPTIONAL_RECORDED = ("tags", "reserved_concurrency")
PLACEHOLDERS = ("env", "account", "region", "app", "function")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_IDENTITY = ("handler", "runtime", "architecture")  # never filled in: they name the code


def recorded_json(settings: FunctionSettings) -> dict[str, Any]:
    """The settings a release document records for one function (placeholders left as written).

    Tags and reserved concurrency are written only when set, so a release without them is the same document as
    before relay recorded them.
    """
    doc = settings.to_json()
    return {name: doc[name] for name in RECORDED if name not in _OPTIONAL_RECORDED or doc[name]}


def from_recorded(doc: Mapping[str, Any], *, handler: str, runtime: str, architecture: str) -> FunctionSettings:
    """A release's recorded settings back as a record (layers are the planner's to add)."""
    return FunctionSettings(handler=handler, runtime=runtime, architecture=architecture,
                            **{name: doc[name] for name in RECORDED if name in doc})


def with_overrides(settings: FunctionSettings, overrides: Sequence[Mapping[str, Any]]) -> FunctionSettings:
    """`settings` with each override applied in turn; `environment` and `tags` are merged per key, the rest replaced."""
    for override in overrides:
        changes: dict[str, Any] = {}
        for name, value in override.items():
            if name in ("environment", "tags"):
                changes[name] = {**dict(changes.get(name, settings.environment)), **dict(value)}
            else:
                changes[name] = value
        settings = attrs.evolve(settings, **changes)
    return settings


def with_placeholders(settings: FunctionSettings, values: Mapping[str, str]) -> FunctionSettings:
    """`{env}`, `{account}`, `{region}`, `{app}`, `{function}` filled in every value (and third-party layer ARN)."""
    def fill(text: str) -> str:
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return fill(value)
        if isinstance(value, LayerRef):
            return attrs.evolve(value, arn=fill(value.arn)) if value.arn and value.sha256 is None else value
        if isinstance(value, tuple):
            return tuple(walk(item) for item in value)
        return value

    return attrs.evolve(settings, **{field.name: walk(getattr(settings, field.name))
                                     for field, _ in declared_settings() if field.name not in _IDENTITY})


def unknown_placeholders(value: Any) -> list[str]:
    """Placeholders in a config value (a string, or a list/object of them) that relay does not fill in."""
    if isinstance(value, str):
        return [name for name in _PLACEHOLDER.findall(value) if name not in PLACEHOLDERS]
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, (list, tuple)) else ()
    return [name for item in items for name in unknown_placeholders(item)]


def settings_in_environment(recorded: FunctionSettings, overrides: Sequence[Mapping[str, Any]],
                            placeholders: Mapping[str, str]) -> FunctionSettings:
    """The settings one function gets in one environment: the release's, the environment's overrides, placeholders."""
    return with_placeholders(with_overrides(recorded, overrides), placeholders)


def differing_values(final: FunctionSettings, recorded: FunctionSettings) -> dict[str, Any]:
    """What an environment made of the release's recorded settings: each changed value (changed variables only)."""
    after, before = final.to_json(), recorded.to_json()
    found: dict[str, Any] = {}
    for name in OVERRIDABLE:
        if after[name] == before[name]:
            continue
        if name in ("environment", "tags"):
            found[name] = {key: value for key, value in after[name].items() if before[name].get(key) != value}
        else:
            found[name] = after[name]
    return found


# -- tags relay manages --------------------------------------------------------------------------------

# The tag in which relay records the keys of the tags it set on a function (space-separated, sorted), so that a
# later release that drops a key removes it, and a tag set by anyone else (CloudFormation's `aws:*`, a team's
# cost tags) is never touched. Tag keys relay sets may not contain spaces, nor start with `aws:` or `relay:`.
MANAGED_TAGS = "relay:managed-tags"
RESERVED_TAG_PREFIXES = ("aws:", "relay:")


def managed_tag_keys(tags: Mapping[str, str]) -> tuple[str, ...]:
    """The keys relay set before, as the function's `relay:managed-tags` tag records them."""
    return tuple(sorted(set((tags.get(MANAGED_TAGS) or "").split())))


def tag_changes(wanted: Sequence[tuple[str, str]], found: Mapping[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """What brings a function's tags (`found`) to the ones relay wants: (tags to set, keys to remove).

    Relay sets its tags and its `relay:managed-tags` record, and removes only keys its record lists that `wanted`
    no longer has (with the record itself when nothing is left); a tag anyone else set stays.
    """
    wanted_map = dict(wanted)
    record = " ".join(sorted(wanted_map))
    to_set = {key: value for key, value in wanted_map.items() if found.get(key) != value}
    removed = [key for key in managed_tag_keys(found) if key not in wanted_map and key in found]
    if record and found.get(MANAGED_TAGS) != record:
        to_set[MANAGED_TAGS] = record
    if not record and MANAGED_TAGS in found:
        removed.append(MANAGED_TAGS)
    return to_set, tuple(removed)


def settings_digest(settings: FunctionSettings) -> str:
    """sha256 of the settings a function ends up with (layers by digest, or by ARN for a third-party layer)."""
    doc = settings.to_json()
    doc["layers"] = [ref.sha256 or ref.arn for ref in settings.layers]
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
