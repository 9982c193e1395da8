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

from collections.abc import Callable, Iterator, Mapping
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


def setting(aws: str, *, default: Any = attrs.NOTHING, converter: Callable[[Any], Any] | None = None,
            validator: Any = None, to_aws: Callable[[Any], Any] | None = None,
            from_aws: Callable[[Any], Any] | None = None, with_code: bool = False, compared: bool = True) -> Any:
    """An attrs field of `FunctionSettings`, with its Lambda mapping in the metadata."""
    declared = Setting(aws, with_code=with_code, compared=compared,
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
    layers: tuple[LayerRef, ...] = setting(
        "Layers", default=(), converter=to_tuple,
        to_aws=lambda refs: [ref.require_arn() for ref in refs],
        from_aws=lambda found: [LayerRef.at(item["Arn"]) for item in found])
    # A published version's Description is relay's mark (which bytes it holds), not the function's own: not compared.
    description: str = setting("Description", default="", compared=False)

    def differences(self, other: FunctionSettings) -> tuple[str, ...]:
        """Names of the compared settings that differ from `other`'s, in declaration order (empty: the same)."""
        return tuple(field.name for field, declared in declared_settings()
                     if declared.compared and getattr(self, field.name) != getattr(other, field.name))

    def with_layer_arns(self, arns: Mapping[tuple[str, str | None], str]) -> FunctionSettings:
        """A copy whose layers carry the ARN `arns` gives for their identity (layers published or found in one account)."""
        return attrs.evolve(self, layers=tuple(attrs.evolve(ref, arn=arns.get(ref.identity, ref.arn)) for ref in self.layers))

    def to_json(self) -> dict:
        doc: dict[str, Any] = {}
        for field, _ in declared_settings():
            value = getattr(self, field.name)
            if field.name == "environment":
                value = dict(value)
            elif field.name == "layers":
                value = [ref.to_json() for ref in value]
            doc[field.name] = value
        return doc


def declared_settings() -> Iterator[tuple[attrs.Attribute, Setting]]:
    """Every field of `FunctionSettings` with its Lambda mapping."""
    for field in attrs.fields(FunctionSettings):
        yield field, field.metadata[_SETTING]


def code_settings() -> tuple[str, ...]:
    """The settings that travel with the code: changing one means sending the code again."""
    return tuple(field.name for field, declared in declared_settings() if declared.with_code)
