"""AWS Lambda, in typed methods: what promotion, rollback and status need.

Functions are always named by their bare name through the session of the
account they live in; an ARN is never passed in. Every ARN Lambda returns is
checked to carry the session's account, because an ARN of another account is
silently resolved in the caller's own account by some emulators (moto) and
because a mix-up here would deploy into the wrong account.

`CodeSha256` and `RevisionId` are sent as preconditions where Lambda accepts
them; callers still compare the results themselves (moto ignores them).
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from builder.aws.errors import error_code, translate
from builder.aws.session import AwsSession
from builder.aws.sts import arn_account
from builder.errors import AwsError, NotFound, RaceLost
from builder.lambda_records import LATEST, AliasConfig, FunctionConfig, LayerVersionInfo, Trigger
from builder.settings import FunctionSettings, declared_settings

_PAGE = 50
_INVOKE_ACTIONS = {"lambda:invokefunction", "lambda:invokefunctionurl", "lambda:*", "*"}
_CODE_DOWNLOAD_TIMEOUT = 60


@attrs.frozen
class ZipCode:
    """Code sent inline (up to 50 MB zipped)."""

    data: bytes

    def params(self) -> dict[str, Any]:
        return {"ZipFile": self.data}


@attrs.frozen
class S3Code:
    """Code Lambda fetches from a bucket in the function's own account and region."""

    bucket: str
    key: str

    def params(self) -> dict[str, Any]:
        return {"S3Bucket": self.bucket, "S3Key": self.key}


CodeSource = ZipCode | S3Code


def settings_params(settings: FunctionSettings, *, configuration: bool = False, code: bool = False) -> dict[str, Any]:
    """Request parameters for the settings sent with the configuration and/or with the code."""
    return {declared.aws: declared.to_aws(getattr(settings, field.name))
            for field, declared in declared_settings()
            if not declared.function_level and (code if declared.with_code else configuration)}


def settings_from_reply(reply: Mapping[str, Any]) -> FunctionSettings:
    """A `FunctionConfiguration` reply read back into the record relay sends (a key it omits: the default)."""
    values = {field.name: declared.from_aws(reply[declared.aws])
              for field, declared in declared_settings()
              if not declared.function_level and reply.get(declared.aws) is not None}
    values.setdefault("handler", "")
    values.setdefault("runtime", "")
    return FunctionSettings(**values)


@attrs.frozen
class FunctionLevel:
    """What a function has outside its versions: its tags and reserved concurrency (None: unreserved)."""

    arn: str  # the unqualified function's ARN (tags are set on it)
    tags: dict[str, str] = attrs.field(factory=dict, hash=False)
    reserved_concurrency: int | None = None


def unqualified_arn(arn: str) -> str:
    """`arn:aws:lambda:<region>:<account>:function:<name>` without a `:<qualifier>`."""
    parts = arn.split(":")
    return ":".join(parts[:7]) if len(parts) > 7 else arn


class LambdaApi:
    """Lambda in one account and region, reached through that account's session."""

    def __init__(self, session: AwsSession, *, account: str) -> None:
        self.session = session
        self.account = account
        self._client = session.client("lambda")

    def where(self, name: str) -> str:
        return f"function {name} (account {self.account}, {self.session.region})"

    # -- reads ---------------------------------------------------------------------------------

    def get_function(self, name: str, qualifier: str | None = None) -> FunctionConfig | None:
        """The function's configuration ($LATEST or `qualifier`), or None when it does not exist."""
        params: dict[str, Any] = {"FunctionName": name}
        if qualifier:
            params["Qualifier"] = qualifier
        try:
            with self._call("lambda:GetFunctionConfiguration", self.where(name)):
                reply = self._client.get_function_configuration(**params)
        except NotFound:
            return None
        return self._function(reply, name)

    def get_alias(self, name: str, alias: str) -> AliasConfig | None:
        try:
            with self._call("lambda:GetAlias", f"alias {alias} of {self.where(name)}"):
                reply = self._client.get_alias(FunctionName=name, Name=alias)
        except NotFound:
            return None
        return self._alias(reply, name)

    def function_versions(self, name: str) -> tuple[FunctionConfig | None, list[FunctionConfig]]:
        """`$LATEST` and every published version (oldest first), in one listing; (None, []) when absent."""
        found: list[FunctionConfig] = []
        params: dict[str, Any] = {"FunctionName": name, "MaxItems": _PAGE}
        while True:
            try:
                with self._call("lambda:ListVersionsByFunction", self.where(name)):
                    reply = self._client.list_versions_by_function(**params)
            except NotFound:
                return None, []
            found.extend(self._function(item, name) for item in reply.get("Versions", ()))
            if not reply.get("NextMarker"):
                break
            params["Marker"] = reply["NextMarker"]
        latest = next((v for v in found if v.is_latest), None)
        published = sorted((v for v in found if not v.is_latest), key=lambda v: int(v.version))
        return latest, published

    def list_layer_versions(self, layer_name: str) -> list[LayerVersionInfo]:
        """Every version of the layer, newest first; [] when the layer does not exist."""
        found: list[LayerVersionInfo] = []
        params: dict[str, Any] = {"LayerName": layer_name, "MaxItems": _PAGE}
        while True:
            try:
                with self._call("lambda:ListLayerVersions", f"layer {layer_name} (account {self.account})"):
                    reply = self._client.list_layer_versions(**params)
            except NotFound:
                return []
            found.extend(self._layer(item, layer_name) for item in reply.get("LayerVersions", ()))
            if not reply.get("NextMarker"):
                break
            params["Marker"] = reply["NextMarker"]
        return sorted(found, key=lambda v: v.version, reverse=True)

    # -- what invokes a function -----------------------------------------------------------------

    def event_source_mappings(self, name: str) -> list[Trigger]:
        """The function's event source mappings (queues, streams), each with the function ARN it invokes."""
        found: list[Trigger] = []
        params: dict[str, Any] = {"FunctionName": name, "MaxItems": _PAGE}
        while True:
            try:
                with self._call("lambda:ListEventSourceMappings", self.where(name)):
                    reply = self._client.list_event_source_mappings(**params)
            except NotFound:
                return found
            found += [Trigger("event source mapping", item.get("EventSourceArn") or "?", item.get("FunctionArn") or "",
                              item.get("UUID", "")) for item in reply.get("EventSourceMappings", ())]
            if not reply.get("NextMarker"):
                return found
            params["Marker"] = reply["NextMarker"]

    def function_url(self, name: str) -> Trigger | None:
        """The unqualified function's URL, or None (ResourceNotFound: it has none)."""
        try:
            with self._call("lambda:GetFunctionUrlConfig", self.where(name)):
                reply = self._client.get_function_url_config(FunctionName=name)
        except NotFound:
            return None
        return Trigger("function URL", reply.get("FunctionUrl", "?"), reply.get("FunctionArn") or name,
                       reply.get("AuthType", ""))

    def invoke_permissions(self, name: str) -> list[Trigger]:
        """Statements of the unqualified function's resource policy that allow invoking it ([] without a policy)."""
        try:
            with self._call("lambda:GetPolicy", self.where(name)):
                reply = self._client.get_policy(FunctionName=name)
        except NotFound:
            return []
        try:
            statements = json.loads(reply.get("Policy") or "{}").get("Statement") or []
        except ValueError:
            return []
        found = []
        for statement in statements if isinstance(statements, list) else [statements]:
            actions = statement.get("Action") or []
            actions = [actions] if isinstance(actions, str) else actions
            if statement.get("Effect") != "Allow" or not _INVOKE_ACTIONS & {a.lower() for a in actions}:
                continue
            principal = statement.get("Principal") or "?"
            if isinstance(principal, dict):
                principal = ", ".join(str(v) for v in principal.values())
            source = (statement.get("Condition") or {}).get("ArnLike", {}).get("AWS:SourceArn")
            resource = statement.get("Resource") or ""
            found.append(Trigger("permission", f"{principal}" + (f" from {source}" if source else ""),
                                 resource if isinstance(resource, str) else ",".join(resource), statement.get("Sid", "")))
        return found

    def unqualified_triggers(self, name: str) -> list[Trigger]:
        """Every trigger that invokes the function unqualified or at `$LATEST` (three reads)."""
        url = self.function_url(name)
        found = [*self.event_source_mappings(name), *((url,) if url else ()), *self.invoke_permissions(name)]
        return [t for t in found if t.bypasses_alias]

    def version_code(self, name: str, version: str) -> bytes | None:
        """The zip a published version holds, from the pre-signed `Code.Location` Lambda hands out.

        None when the location cannot be fetched (moto hands out a location that does not exist); the
        caller checks the bytes against the version's `CodeSha256`.
        """
        with self._call("lambda:GetFunction", self.where(name)):
            reply = self._client.get_function(FunctionName=name, Qualifier=version)
        location = (reply.get("Code") or {}).get("Location")
        if not location or not location.startswith("https://"):
            return None
        try:
            with urllib.request.urlopen(location, timeout=_CODE_DOWNLOAD_TIMEOUT) as response:
                return response.read()
        except (urllib.error.URLError, OSError, ValueError):
            return None

    # -- provisioned concurrency (on the alias) ---------------------------------------------------

    def provisioned_concurrency(self, name: str, alias: str) -> int | None:
        """The alias's requested provisioned concurrency, or None when it has none."""
        try:
            with self._call("lambda:GetProvisionedConcurrencyConfig", f"alias {alias} of {self.where(name)}"):
                reply = self._client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=alias)
        except NotFound:
            return None
        except AwsError as exc:
            if "ProvisionedConcurrencyConfigNotFoundException" in exc.message:
                return None
            raise
        return int(reply["RequestedProvisionedConcurrentExecutions"])

    def put_provisioned_concurrency(self, name: str, alias: str, count: int) -> None:
        with self._call("lambda:PutProvisionedConcurrencyConfig", f"alias {alias} of {self.where(name)}"):
            self._client.put_provisioned_concurrency_config(FunctionName=name, Qualifier=alias,
                                                            ProvisionedConcurrentExecutions=count)

    def delete_provisioned_concurrency(self, name: str, alias: str) -> None:
        with self._call("lambda:DeleteProvisionedConcurrencyConfig", f"alias {alias} of {self.where(name)}"):
            self._client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=alias)

    # -- function-level settings: tags and reserved concurrency (not part of any version) -----------

    def function_level(self, name: str) -> FunctionLevel | None:
        """The unqualified function's ARN, tags and reserved concurrency, in one GetFunction; None when it is absent.

        GetFunction returns the tags only to a caller allowed `lambda:ListTags` (the deployer policy allows it).
        """
        try:
            with self._call("lambda:GetFunction", self.where(name)):
                reply = self._client.get_function(FunctionName=name)
        except NotFound:
            return None
        arn = (reply.get("Configuration") or {}).get("FunctionArn") or ""
        self._check_arn(arn, name)
        reserved = (reply.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
        return FunctionLevel(arn=unqualified_arn(arn), tags=dict(reply.get("Tags") or {}),
                             reserved_concurrency=int(reserved) if reserved is not None else None)

    def tag_function(self, name: str, arn: str, tags: Mapping[str, str]) -> None:
        self._check_arn(arn, name)
        with self._call("lambda:TagResource", self.where(name)):
            self._client.tag_resource(Resource=arn, Tags=dict(tags))

    def untag_function(self, name: str, arn: str, keys: Sequence[str]) -> None:
        self._check_arn(arn, name)
        with self._call("lambda:UntagResource", self.where(name)):
            self._client.untag_resource(Resource=arn, TagKeys=list(keys))

    def put_reserved_concurrency(self, name: str, count: int) -> None:
        with self._call("lambda:PutFunctionConcurrency", self.where(name)):
            self._client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=count)

    def delete_reserved_concurrency(self, name: str) -> None:
        with self._call("lambda:DeleteFunctionConcurrency", self.where(name)):
            self._client.delete_function_concurrency(FunctionName=name)

    # -- writes --------------------------------------------------------------------------------

    def publish_layer_version(
        self, layer_name: str, code: CodeSource, *, description: str, runtimes: Sequence[str], architectures: Sequence[str],
    ) -> LayerVersionInfo:
        with self._call("lambda:PublishLayerVersion", f"layer {layer_name} (account {self.account})"):
            reply = self._client.publish_layer_version(
                LayerName=layer_name, Content=code.params(), Description=description,
                CompatibleRuntimes=list(runtimes), CompatibleArchitectures=list(architectures),
            )
        return self._layer(reply, layer_name)

    def create_function(self, name: str, code: CodeSource, settings: FunctionSettings, *, role: str) -> FunctionConfig:
        params = settings_params(settings, configuration=True, code=True)
        with self._call("lambda:CreateFunction", self.where(name)):
            reply = self._client.create_function(
                FunctionName=name, Role=role, Code=code.params(), Publish=False, PackageType="Zip", **params,
            )
        return self._function(reply, name)

    def update_configuration(self, name: str, settings: FunctionSettings, *, revision_id: str | None = None) -> FunctionConfig:
        """Every setting that is not sent with the code (`settings_params(configuration=True)`)."""
        params: dict[str, Any] = {"FunctionName": name, **settings_params(settings, configuration=True)}
        if revision_id:
            params["RevisionId"] = revision_id
        with self._call("lambda:UpdateFunctionConfiguration", self.where(name)):
            reply = self._client.update_function_configuration(**params)
        return self._function(reply, name)

    def update_code(
        self, name: str, code: CodeSource, settings: FunctionSettings, *, revision_id: str | None = None,
    ) -> FunctionConfig:
        """The code, with the settings that travel with it (`settings_params(code=True)`: the architecture)."""
        params: dict[str, Any] = {"FunctionName": name, "Publish": False, **code.params(),
                                  **settings_params(settings, code=True)}
        if revision_id:
            params["RevisionId"] = revision_id
        with self._call("lambda:UpdateFunctionCode", self.where(name)):
            reply = self._client.update_function_code(**params)
        return self._function(reply, name)

    def publish_version(self, name: str, *, code_sha256: str, description: str, revision_id: str | None = None) -> FunctionConfig:
        """Publish $LATEST; Lambda refuses when its code is not `code_sha256` (moto does not: check the result)."""
        params: dict[str, Any] = {"FunctionName": name, "CodeSha256": code_sha256, "Description": description}
        if revision_id:
            params["RevisionId"] = revision_id
        with self._call("lambda:PublishVersion", self.where(name)):
            reply = self._client.publish_version(**params)
        return self._function(reply, name)

    def create_alias(self, name: str, alias: str, *, version: str, description: str,
                     weights: Mapping[str, float] | None = None) -> AliasConfig:
        params: dict[str, Any] = {"FunctionName": name, "Name": alias, "FunctionVersion": version, "Description": description}
        if weights:
            params["RoutingConfig"] = {"AdditionalVersionWeights": dict(weights)}
        with self._call("lambda:CreateAlias", f"alias {alias} of {self.where(name)}"):
            reply = self._client.create_alias(**params)
        return self._alias(reply, name)

    def update_alias(self, name: str, alias: str, *, version: str, description: str,
                     weights: Mapping[str, float] | None = None, revision_id: str | None = None) -> AliasConfig:
        """Point the alias at `version`, with `weights` of traffic on other versions (none: all on `version`)."""
        params: dict[str, Any] = {
            "FunctionName": name, "Name": alias, "FunctionVersion": version, "Description": description,
            "RoutingConfig": {"AdditionalVersionWeights": dict(weights or {})},
        }
        if revision_id:
            params["RevisionId"] = revision_id
        with self._call("lambda:UpdateAlias", f"alias {alias} of {self.where(name)}"):
            reply = self._client.update_alias(**params)
        return self._alias(reply, name)

    def delete_alias(self, name: str, alias: str) -> None:
        with self._call("lambda:DeleteAlias", f"alias {alias} of {self.where(name)}"):
            self._client.delete_alias(FunctionName=name, Name=alias)

    # -- replies -> records --------------------------------------------------------------------

    def _function(self, reply: dict[str, Any], name: str) -> FunctionConfig:
        arn = reply["FunctionArn"]
        self._check_arn(arn, name)
        settings = settings_from_reply(reply)  # its layers may be third-party ones, in other accounts (by ARN)
        return FunctionConfig(
            name=reply.get("FunctionName", name),
            arn=arn,
            version=str(reply.get("Version", LATEST)),
            code_sha256=reply.get("CodeSha256", ""),
            settings=settings,
            code_size=reply.get("CodeSize", 0),
            role=reply.get("Role", ""),
            revision_id=reply.get("RevisionId"),
            state=reply.get("State"),
            last_update_status=reply.get("LastUpdateStatus"),
            last_update_reason=reply.get("LastUpdateStatusReason"),
        )

    def _alias(self, reply: dict[str, Any], name: str) -> AliasConfig:
        arn = reply["AliasArn"]
        self._check_arn(arn, name)
        routing = reply.get("RoutingConfig") or {}
        return AliasConfig(
            name=reply["Name"],
            arn=arn,
            function_version=str(reply["FunctionVersion"]),
            description=reply.get("Description", "") or "",
            weights={str(k): float(v) for k, v in (routing.get("AdditionalVersionWeights") or {}).items()},
            revision_id=reply.get("RevisionId"),
        )

    def _layer(self, reply: dict[str, Any], layer_name: str) -> LayerVersionInfo:
        arn = reply["LayerVersionArn"]
        self._check_arn(arn, f"layer {layer_name}")
        return LayerVersionInfo(
            layer_name=layer_name,
            arn=arn,
            version=int(reply["Version"]),
            description=reply.get("Description", "") or "",
            code_sha256=(reply.get("Content") or {}).get("CodeSha256", ""),
            architectures=reply.get("CompatibleArchitectures") or (),
            runtimes=reply.get("CompatibleRuntimes") or (),
        )

    def _check_arn(self, arn: str, what: str) -> None:
        account = arn_account(arn)
        if account != self.account:
            raise AwsError(
                f"{what}: Lambda returned {arn}, which is in account {account}, not {self.account}",
                hint="The session reached the wrong account: check the environment's role and account.",
            )

    @contextlib.contextmanager
    def _call(self, operation: str, where: str) -> Iterator[None]:
        try:
            yield
        except ClientError as exc:
            code = error_code(exc)
            if code == "PreconditionFailedException":
                raise RaceLost(f"{operation} {where}: changed by someone else meanwhile (revision or code differs)",
                               hint="Another deployment touched this function; check `relay status` and rerun.") from exc
            if code == "ResourceConflictException":
                message = exc.response.get("Error", {}).get("Message") or code
                raise AwsError(f"{operation} {where}: conflict: {message}",
                               hint="Another update of this function is in progress or just happened; wait and rerun.") from exc
            raise translate(exc, operation=operation, where=where) from exc
        except BotoCoreError as exc:
            raise translate(exc, operation=operation, where=where) from exc
