"""What Lambda holds, as relay reads it: a function configuration, an alias, a layer version.

Plain frozen records, no boto3: `builder/aws/lambda_.py` fills them from
Lambda's replies, and the promotion planner reads them without importing
anything of `builder/aws/`.
"""

from __future__ import annotations

import attrs

from builder.frozen import to_tuple
from builder.settings import FunctionSettings

LATEST = "$LATEST"


@attrs.frozen
class FunctionConfig:
    """One function configuration: `$LATEST` or a published version."""

    name: str
    arn: str
    version: str
    code_sha256: str
    settings: FunctionSettings  # layers by ARN only (`LayerRef.at`) until the remote state resolves them
    code_size: int = 0
    role: str = ""
    revision_id: str | None = None
    state: str | None = None
    last_update_status: str | None = None
    last_update_reason: str | None = None

    @property
    def description(self) -> str:
        """For a published version: relay's mark, when relay published it."""
        return self.settings.description

    @property
    def architecture(self) -> str:
        return self.settings.architecture

    @property
    def is_latest(self) -> bool:
        return self.version == LATEST


@attrs.frozen
class AliasConfig:
    name: str
    arn: str
    function_version: str
    description: str = ""
    weights: tuple[tuple[str, float], ...] = attrs.field(default=(), converter=lambda v: tuple(sorted(dict(v).items())))
    revision_id: str | None = None


@attrs.frozen
class LayerVersionInfo:
    layer_name: str
    arn: str  # the layer version ARN (ends in :<version>)
    version: int
    description: str = ""
    code_sha256: str = ""
    architectures: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    runtimes: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)


@attrs.frozen
class Trigger:
    """Something that invokes a function: an event source mapping, its function URL, a resource-policy permission.

    `target` is the function ARN it invokes; without a qualifier (or with
    `$LATEST`) it bypasses the alias, so promotion (gates, canary, rollback of
    the alias) does not govern the traffic it sends.
    """

    kind: str  # "event source mapping" | "function URL" | "permission"
    source: str  # the queue or stream ARN, the URL, the principal (with its source ARN)
    target: str  # the function ARN it invokes, qualified or not
    ident: str = ""  # the mapping's UUID, the permission's Sid

    @property
    def qualifier(self) -> str | None:
        parts = self.target.split(":")  # arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
        return parts[7] if len(parts) > 7 and parts[7] else None

    @property
    def bypasses_alias(self) -> bool:
        return self.qualifier in (None, LATEST)

    def to_json(self) -> dict:
        return {"kind": self.kind, "source": self.source, "target": self.target, "id": self.ident,
                "qualifier": self.qualifier}
