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
