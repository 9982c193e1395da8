"""The remote state of one environment: a read-only view the planner works from.

Everything relay needs to know about an account is read here, in parallel,
through that account's own Lambda seam: per function the alias (where it
points, its canary weights, its description), `$LATEST` and every published
version with its description, `CodeSha256` and settings; per layer every
version with its description. Nothing here writes. The seam is a protocol
(`LambdaReader`, which `builder.aws.lambda_.LambdaApi` satisfies): this module
imports nothing of `builder/aws/`, so the planner that reads the view does not
either.

What relay writes into descriptions, and reads back (the "marks"):

- a published function version: `relay <app>/<fn>@<version> sha256:<hex>`;
- a layer version: `relay <app>/<layer> <arch> sha256:<hex>`;
- the alias: compact JSON `{"app", "version", "sha256", "previous", "older"}`,
  where `previous` is the Lambda version live before this one and `older`
  the ones before that (newest first, as many as fit in 256 characters).

A version's mark says which bytes it holds; relay only trusts it when the
version's `CodeSha256` is the same digest. The alias mark is what lets
`relay rollback` work with only the target account reachable.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import attrs

from builder.frozen import to_tuple
from builder.lambda_records import AliasConfig, FunctionConfig, LayerVersionInfo
from builder.settings import FunctionSettings, LayerRef

DESCRIPTION_MAX = 256
_VERSION_MARK = re.compile(r"^relay (?P<app>[^/\s]+)/(?P<name>[^@\s]+)@(?P<version>\S+) sha256:(?P<sha>[0-9a-f]{64})$")
_LAYER_MARK = re.compile(r"^relay (?P<app>[^/\s]+)/(?P<name>\S+) (?P<arch>x86_64|arm64) sha256:(?P<sha>[0-9a-f]{64})$")
_READERS = 16


def code_sha256_of(sha256_hex: str) -> str:
    """Lambda's `CodeSha256` (base64 of the raw digest) for a hex sha256."""
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode("ascii")


# -- marks ------------------------------------------------------------------------------------------


@attrs.frozen
class VersionMark:
    app: str
    name: str
    version: str
    sha256: str

    def render(self) -> str:
        return f"relay {self.app}/{self.name}@{self.version} sha256:{self.sha256}"

    @classmethod
    def parse(cls, text: str) -> VersionMark | None:
        match = _VERSION_MARK.match(text.strip())
        if not match:
            return None
        return cls(match["app"], match["name"], match["version"], match["sha"])


@attrs.frozen
class LayerMark:
    app: str
    name: str
    architecture: str
    sha256: str

    def render(self) -> str:
        return f"relay {self.app}/{self.name} {self.architecture} sha256:{self.sha256}"

    @classmethod
    def parse(cls, text: str) -> LayerMark | None:
        match = _LAYER_MARK.match(text.strip())
        if not match:
            return None
        return cls(match["app"], match["name"], match["arch"], match["sha"])


@attrs.frozen
class AliasMark:
    """What the alias says about itself: which release it serves and where it came from."""

    app: str
    version: str | None
    sha256: str | None
    previous: str | None = None
    older: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)

    def render(self) -> str:
        """Compact JSON of at most 256 characters: the oldest history is dropped first."""
        older = list(self.older)
        while True:
            doc: dict[str, object] = {"app": self.app, "version": self.version, "sha256": self.sha256, "previous": self.previous}
            if older:
                doc["older"] = older
            text = json.dumps(doc, separators=(",", ":"))
            if len(text) <= DESCRIPTION_MAX or not older:
                return text
            older.pop()

    def history(self) -> tuple[str, ...]:
        """Lambda versions live before this one, newest first."""
        return tuple(v for v in (self.previous, *self.older) if v)

    @classmethod
    def parse(cls, text: str) -> AliasMark | None:
        try:
            doc = json.loads(text)
        except ValueError:
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("app"), str):
            return None
        older = doc.get("older") or []
        if not isinstance(older, list):
            older = []
        return cls(
            app=doc["app"],
            version=_text_or_none(doc.get("version")),
            sha256=_text_or_none(doc.get("sha256")),
            previous=_text_or_none(doc.get("previous")),
            older=tuple(str(v) for v in older if v),
        )


def _text_or_none(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


# -- the view ---------------------------------------------------------------------------------------


@attrs.frozen
class PublishedVersion:
    config: FunctionConfig
    mark: VersionMark | None

    @property
    def number(self) -> str:
        return self.config.version

    @property
    def trusted_digest(self) -> str | None:
        """The sha256 its description claims, when its `CodeSha256` agrees; else None."""
        if self.mark is None or code_sha256_of(self.mark.sha256) != self.config.code_sha256:
            return None
        return self.mark.sha256

    def carries(self, app: str, name: str, sha256: str) -> bool:
        """Its description names this app/function and digest, and its code is those bytes."""
        return (self.mark is not None and (self.mark.app, self.mark.name) == (app, name)
                and self.trusted_digest == sha256)


@attrs.frozen
class FunctionLevelState:
    """A function's tags and reserved concurrency as the account has them (not part of any version)."""

    arn: str
    tags: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=lambda v: tuple(sorted(dict(v).items())))
    reserved_concurrency: int | None = None

    def as_settings(self, settings: FunctionSettings) -> FunctionSettings:
        """`settings` with these function-level values in place of its own (to compare with what relay wants)."""
        return attrs.evolve(settings, tags=self.tags, reserved_concurrency=self.reserved_concurrency)


@attrs.frozen
class FunctionState:
    function: str  # config name
    function_name: str  # the name in AWS
    latest: FunctionConfig | None  # None: the function does not exist
    alias: AliasConfig | None
    versions: tuple[PublishedVersion, ...] = attrs.field(default=(), converter=to_tuple)
    provisioned: int | None = None  # the alias's provisioned concurrency (read only where relay manages it)
    # Function-level settings, read only where relay manages the configuration (None: not read): the unqualified
    # function's ARN, every tag it has (relay's and others'), its reserved concurrency (None: unreserved).
    function_level: FunctionLevelState | None = None

    @property
    def exists(self) -> bool:
        return self.latest is not None

    def version(self, number: str | None) -> PublishedVersion | None:
        return next((v for v in self.versions if v.number == number), None) if number else None

    @property
    def live(self) -> PublishedVersion | None:
        """The version the alias points at (its main version; canary weights aside)."""
        return self.version(self.alias.function_version) if self.alias else None

    @property
    def alias_mark(self) -> AliasMark | None:
        return AliasMark.parse(self.alias.description) if self.alias else None


@attrs.frozen
class LayerState:
    layer_name: str  # the name in AWS, "<app>-<layer>"
    versions: tuple[LayerVersionInfo, ...] = attrs.field(default=(), converter=to_tuple)  # newest first

    def find(self, sha256: str, architecture: str) -> LayerVersionInfo | None:
        """The newest version whose description carries `sha256` for `architecture` and whose content agrees."""
        for version in self.versions:
            if self._identity(version) == (sha256, architecture):
                return version
        return None

    def identity_of(self, arn: str) -> tuple[str, str] | None:
        version = next((v for v in self.versions if v.arn == arn), None)
        return self._identity(version) if version else None

    @staticmethod
    def _identity(version: LayerVersionInfo) -> tuple[str, str] | None:
        """(sha256, architecture) by the version's description, when its content agrees."""
        mark = LayerMark.parse(version.description)
        if mark is None or (version.code_sha256 and version.code_sha256 != code_sha256_of(mark.sha256)):
            return None
        return mark.sha256, mark.architecture


@attrs.frozen
class RemoteState:
    env: str
    account: str
    region: str
    alias: str
    functions: Mapping[str, FunctionState]  # by config name
    layers: Mapping[str, LayerState] = attrs.field(factory=dict)  # by AWS layer name

    def function(self, name: str) -> FunctionState:
        return self.functions[name]

    def layer_identity(self, arn: str) -> tuple[str, str] | None:
        """(sha256, architecture) of the layer version `arn`, by its relay description (None: unknown to relay)."""
        for layer in self.layers.values():
            found = layer.identity_of(arn)
            if found:
                return found
        return None

    def settings_of(self, config: FunctionConfig) -> FunctionSettings:
        """The configuration's settings with its layers identified (by relay's layer descriptions), to compare."""
        return attrs.evolve(config.settings, layers=tuple(self._layer_ref(ref) for ref in config.settings.layers))

    def _layer_ref(self, ref: LayerRef) -> LayerRef:
        found = self.layer_identity(ref.arn) if ref.arn else None
        return LayerRef(found[0], found[1], ref.arn) if found else ref


class LambdaReader(Protocol):
    """The reads of the Lambda seam the state needs (`builder.aws.lambda_.LambdaApi`)."""

    account: str

    def function_versions(self, name: str) -> tuple[FunctionConfig | None, list[FunctionConfig]]: ...

    def get_alias(self, name: str, alias: str) -> AliasConfig | None: ...

    def list_layer_versions(self, layer_name: str) -> list[LayerVersionInfo]: ...

    def provisioned_concurrency(self, name: str, alias: str) -> int | None: ...

    def function_level(self, name: str) -> _FunctionLevelReply | None: ...


class _FunctionLevelReply(Protocol):
    @property
    def arn(self) -> str: ...

    @property
    def tags(self) -> Mapping[str, str]: ...

    @property
    def reserved_concurrency(self) -> int | None: ...


def read_state(
    lam: LambdaReader,
    *,
    env: str,
    region: str,
    alias: str,
    functions: Mapping[str, str],
    layers: Sequence[str] = (),
    provisioned: Collection[str] = (),
    function_level: Collection[str] = (),
    readers: int = _READERS,
) -> RemoteState:
    """Read `functions` (config name -> AWS name) and `layers` (AWS names) in one account, in parallel.

    Two calls per function (its versions with `$LATEST`, its alias) and one per layer; one more for the
    alias's provisioned concurrency of the functions in `provisioned` (those relay manages it for), and one for
    the tags and reserved concurrency of those in `function_level` (those whose configuration relay manages).
    """
    def one_function(item: tuple[str, str]) -> FunctionState:
        return read_function(lam, item[0], item[1], alias, provisioned=item[0] in provisioned,
                             function_level=item[0] in function_level)

    work = list(functions.items())
    with ThreadPoolExecutor(max_workers=max(1, min(readers, len(work) + len(layers))), thread_name_prefix="relay-state") as pool:
        layer_futures = {name: pool.submit(lam.list_layer_versions, name) for name in layers}
        found = list(pool.map(one_function, work))
        layer_states = {name: LayerState(name, future.result()) for name, future in layer_futures.items()}
    return RemoteState(env=env, account=lam.account, region=region, alias=alias,
                       functions={state.function: state for state in found}, layers=layer_states)


def read_function(lam: LambdaReader, function: str, function_name: str, alias: str, *,
                  provisioned: bool = False, function_level: bool = False) -> FunctionState:
    latest, published = lam.function_versions(function_name)
    if latest is None:
        return FunctionState(function, function_name, None, None)
    versions = tuple(PublishedVersion(v, VersionMark.parse(v.description)) for v in published)
    found = lam.get_alias(function_name, alias)
    concurrency = lam.provisioned_concurrency(function_name, alias) if provisioned and found is not None else None
    level = lam.function_level(function_name) if function_level else None
    return FunctionState(function, function_name, latest, found, versions, concurrency,
                         FunctionLevelState(level.arn, level.tags, level.reserved_concurrency) if level else None)
