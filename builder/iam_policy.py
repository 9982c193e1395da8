"""`relay iam-policy`: least-privilege IAM policy documents for the CI publisher and the deployers.

- publisher (the CI role in the registry account): read the registry prefix,
  write the app's documents and the shared content-addressed blobs (never the
  ledger), list only under those prefixes, and sign with the KMS key when
  signing is `kms`.
- deployer (one role per environment account): the Lambda calls a promotion
  and a rollback make, on the app's function and layer names only; create a
  function (and pass its execution role to Lambda) only where the config
  gives a role; read the configured alarms; read the registry prefix and
  append to this environment's ledger only, with If-None-Match (a record
  cannot be overwritten). Reading what invokes a function
  (event source mappings, its URL, its resource policy) for `relay status`,
  the dry run and the canary check; setting the alias's provisioned
  concurrency where the environment asks for it. A function whose environment
  says `manage = "code"` gets no `UpdateFunctionConfiguration` and is never
  created: its configuration belongs to the infrastructure code. Tags and
  reserved concurrency (function-level settings): read with GetFunction
  (ListTags), set with TagResource/UntagResource and PutFunctionConcurrency/
  DeleteFunctionConcurrency, the writes only where relay owns the configuration.
  After the deploy: invoking the environment's alias (`relay invoke --env`)
  and reading the functions' log groups (`relay logs`).
- the registry bucket's policy, which cross-account reads need as well: an
  identity policy in the environment account is not enough on its own.

Every Resource is an ARN built from the config's names; no statement that
writes to Lambda or S3 has Resource "*".
"""

from __future__ import annotations

import attrs

from builder.config import Environment, Project
from builder.errors import ConfigError

POLICY_VERSION = "2012-10-17"
PARTITION = "aws"
ROLES = ("publisher", "deployer")

FUNCTION_ACTIONS = (
    "lambda:GetFunction",
    "lambda:GetFunctionConfiguration",
    "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration",
    "lambda:PublishVersion",
    "lambda:ListVersionsByFunction",
    "lambda:GetAlias",
    "lambda:CreateAlias",
    "lambda:UpdateAlias",
    "lambda:DeleteAlias",  # undoing a run that created the alias (the revert path)
    "lambda:ListAliases",
    "lambda:GetFunctionUrlConfig",
    "lambda:GetPolicy",
    # Function-level settings (tags, reserved concurrency): GetFunction returns them, its tags only with ListTags.
    "lambda:ListTags",
    "lambda:TagResource",
    "lambda:UntagResource",
    "lambda:GetFunctionConcurrency",
    "lambda:PutFunctionConcurrency",
    "lambda:DeleteFunctionConcurrency",
)
# Infrastructure code owns the configuration, tags and reserved concurrency of a `manage = "code"` function.
FUNCTION_LEVEL_WRITES = ("lambda:TagResource", "lambda:UntagResource", "lambda:PutFunctionConcurrency",
                         "lambda:DeleteFunctionConcurrency")
CODE_ONLY_ACTIONS = tuple(a for a in FUNCTION_ACTIONS
                          if a != "lambda:UpdateFunctionConfiguration" and a not in FUNCTION_LEVEL_WRITES)
PROVISIONED_ACTIONS = ("lambda:GetProvisionedConcurrencyConfig", "lambda:PutProvisionedConcurrencyConfig",
                       "lambda:DeleteProvisionedConcurrencyConfig")
LAYER_ACTIONS = ("lambda:PublishLayerVersion", "lambda:ListLayerVersions", "lambda:GetLayerVersion")
S3_WRITE_ACTIONS = ("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
# Publishing writes these folders of the app; the ledger is written by deployers only.
PUBLISHED_FOLDERS = ("functions", "layers", "releases", "index", "cache")
# A ledger record is written once: PutObject only with If-None-Match (S3 enforces the condition key on
# PutObject since 2024), so neither a deployer nor anyone holding its rights can overwrite a record.
WRITE_ONCE = {"Null": {"s3:if-none-match": "false"}}


@attrs.frozen
class PolicyDocument:
    name: str  # a suggested policy name
    kind: str  # "identity" (attach to a role) | "resource" (a bucket policy)
    account: str | None  # the account it belongs in, when known
    attach_to: str  # what to attach it to, in words or as an ARN
    document: dict

    def to_json(self) -> dict:
        return attrs.asdict(self)


def iam_policies(project: Project, role: str, *, env: str | None = None) -> tuple[PolicyDocument, ...]:
    """The documents for `role`: the publisher's, or each (or one) environment's deployer plus the bucket policy."""
    if role == "publisher":
        return (publisher_policy(project),)
    if role != "deployer":
        raise ConfigError(f"unknown role {role!r}", hint=f"Use one of: {', '.join(ROLES)}.")
    envs = [project.environment(env)] if env else list(project.environments.values())
    if not envs:
        raise ConfigError(f"{project.config_file.name}: no [environments]: there is no deployer to write a policy for",
                          hint="Declare [environments.<name>] with account and region.")
    return (*(deployer_policy(project, e) for e in envs), registry_bucket_policy(project, envs))


# -- publisher ------------------------------------------------------------------------------------


def publisher_policy(project: Project) -> PolicyDocument:
    registry = project.require_registry()
    s3 = _RegistryArns(registry.bucket, registry.prefix, project.name)
    statements = [
        _statement("RegistryRead", ["s3:GetObject"], [s3.blobs, s3.app_objects]),
        _statement("RegistryWrite", S3_WRITE_ACTIONS, [s3.blobs, *(s3.folder(f) for f in PUBLISHED_FOLDERS)]),
        _statement("RegistryList", ["s3:ListBucket"], [s3.bucket],
                   condition={"StringLike": {"s3:prefix": [s3.app_prefix, s3.blobs_prefix]}}),
    ]
    signing = registry.signing
    if signing is not None and signing.kind == "kms":
        statements.append(_kms_statement(project))
    account = registry.account or _account_of(registry.role)
    return PolicyDocument(
        name=f"relay-{project.name}-publisher", kind="identity", account=account,
        attach_to=_role_arn(registry.role, account) or "the CI role that runs `relay publish`",
        document=_document(statements),
    )


def _kms_statement(project: Project) -> dict:
    registry = project.require_registry()
    key_id = registry.signing.key_id if registry.signing else None
    if not key_id:
        raise ConfigError(f"{project.config_file.name}: registry.signing: kind \"kms\" needs key_id")
    actions = ["kms:Sign", "kms:GetPublicKey"]
    if key_id.startswith("arn:") and ":key/" in key_id:
        return _statement("SignReleases", actions, [key_id])
    account = registry.account or _account_of(registry.role)
    region: str | None
    alias: str | None
    if key_id.startswith("arn:") and ":alias/" in key_id:
        region, account = key_id.split(":")[3], key_id.split(":")[4]
        alias = key_id.split(":", 5)[5]
    else:
        region = registry.region
        alias = key_id if key_id.startswith("alias/") else None
    if not region or not account:
        raise ConfigError(
            f"{project.config_file.name}: registry: the KMS key {key_id!r} needs the registry's region and account",
            hint="Set registry.region and registry.account (or a role ARN), or give signing.key_id as a key ARN.",
        )
    if alias is None:
        return _statement("SignReleases", actions, [f"arn:{PARTITION}:kms:{region}:{account}:key/{key_id}"])
    # An alias is not a resource Sign is authorised on: allow the keys that carry that alias.
    return _statement("SignReleases", actions, [f"arn:{PARTITION}:kms:{region}:{account}:key/*"],
                      condition={"ForAnyValue:StringEquals": {"kms:ResourceAliases": [alias]}})


# -- deployer -------------------------------------------------------------------------------------


def deployer_policy(project: Project, env: Environment) -> PolicyDocument:
    registry = project.require_registry()
    s3 = _RegistryArns(registry.bucket, registry.prefix, project.name)
    lam = f"arn:{PARTITION}:lambda:{env.region}:{env.account}"
    functions = [project.functions[n] for n in sorted(project.functions)]
    owned = [fn for fn in functions if env.manage_for(fn.name) != "code"]
    code_only = [fn for fn in functions if env.manage_for(fn.name) == "code"]
    statements = []
    if owned:
        statements.append(_statement("PromoteFunctions", FUNCTION_ACTIONS, _function_arns(lam, owned)))
    if code_only:
        statements.append(_statement("PromoteCodeOnly", CODE_ONLY_ACTIONS, _function_arns(lam, code_only)))
    # ListEventSourceMappings takes no resource: it is a read, allowed on "*" (as AWS requires).
    statements.append(_statement("ReadEventSourceMappings", ["lambda:ListEventSourceMappings"], ["*"]))
    provisioned = [fn for fn in functions if env.provisioned_concurrency_for(fn.name) is not None]
    if provisioned:
        statements.append(_statement("ProvisionedConcurrency", PROVISIONED_ACTIONS,
                                     [f"{lam}:function:{fn.function_name}:{env.alias}" for fn in provisioned]))
    creatable = [fn for fn in owned if fn.role]
    if creatable:
        statements.append(_statement("CreateFunctions", ["lambda:CreateFunction"],
                                     [f"{lam}:function:{fn.function_name}" for fn in creatable]))
        roles = sorted({arn for fn in creatable if (arn := _role_arn(fn.role_in(env.account, env.region), env.account))})
        statements.append(_statement("PassExecutionRoles", ["iam:PassRole"], roles,
                                     condition={"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}))
    if project.layers:
        layer_arns = [arn for name in sorted(project.layers)
                      for arn in (f"{lam}:layer:{project.name}-{name}", f"{lam}:layer:{project.name}-{name}:*")]
        statements.append(_statement("PublishLayers", LAYER_ACTIONS, layer_arns))
    # `relay invoke --env` calls the alias; `relay logs` reads the functions' default log groups (a LoggingConfig
    # LogGroup set by infrastructure code is not in relay.toml: allow logs:FilterLogEvents on it there).
    statements.append(_statement("InvokeAliases", ["lambda:InvokeFunction"],
                                 [f"{lam}:function:{fn.function_name}:{env.alias}" for fn in functions]))
    statements.append(_statement("ReadLogs", ["logs:FilterLogEvents"],
                                 [f"arn:{PARTITION}:logs:{env.region}:{env.account}:log-group:/aws/lambda/{fn.function_name}:*"
                                  for fn in functions]))
    if env.alarms:
        statements.append(_statement("ReadAlarms", ["cloudwatch:DescribeAlarms"],
                                     [f"arn:{PARTITION}:cloudwatch:{env.region}:{env.account}:alarm:{a}" for a in env.alarms]))
    statements += [
        _statement("RegistryRead", ["s3:GetObject"], [s3.blobs, s3.app_objects]),
        _statement("RegistryList", ["s3:ListBucket"], [s3.bucket], condition={"StringLike": {"s3:prefix": [s3.app_prefix]}}),
        _statement("LedgerAppend", ["s3:PutObject"], [s3.ledger(env.name)], condition=WRITE_ONCE),
    ]
    if env.deploy_bucket:
        # Bundles too large for a direct upload go through the environment's own bucket.
        deploy = f"arn:{PARTITION}:s3:::{env.deploy_bucket}/*"
        statements.append(_statement("DeployBucket", ["s3:GetObject", *S3_WRITE_ACTIONS], [deploy]))
    return PolicyDocument(
        name=f"relay-{project.name}-deployer-{env.name}", kind="identity", account=env.account,
        attach_to=_role_arn(env.role, env.account) or f"the role relay uses in account {env.account}",
        document=_document(statements),
    )


def _function_arns(lam: str, functions: list) -> list[str]:
    return [arn for fn in functions for arn in (f"{lam}:function:{fn.function_name}", f"{lam}:function:{fn.function_name}:*")]


def registry_bucket_policy(project: Project, envs: list[Environment]) -> PolicyDocument:
    """The registry bucket's side of cross-account access: each deployer reads the prefix, appends to its ledger."""
    registry = project.require_registry()
    s3 = _RegistryArns(registry.bucket, registry.prefix, project.name)
    statements = []
    for env in envs:
        principal = {"AWS": _role_arn(env.role, env.account) or f"arn:{PARTITION}:iam::{env.account}:root"}
        sid = "".join(ch for ch in env.name.title() if ch.isalnum())
        statements += [
            _statement(f"{sid}Read", ["s3:GetObject"], [s3.blobs, s3.app_objects], principal=principal),
            _statement(f"{sid}List", ["s3:ListBucket"], [s3.bucket], principal=principal,
                       condition={"StringLike": {"s3:prefix": [s3.app_prefix]}}),
            _statement(f"{sid}Ledger", ["s3:PutObject"], [s3.ledger(env.name)], principal=principal,
                       condition=WRITE_ONCE),
        ]
    return PolicyDocument(
        name=f"relay-{project.name}-registry-bucket", kind="resource",
        account=registry.account or _account_of(registry.role),
        attach_to=f"bucket {registry.bucket} (merge into its bucket policy)", document=_document(statements),
    )


# -- pieces -----------------------------------------------------------------------------------------


@attrs.frozen
class _RegistryArns:
    bucket_name: str
    prefix: str
    app: str

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    @property
    def bucket(self) -> str:
        return f"arn:{PARTITION}:s3:::{self.bucket_name}"

    def _object(self, relative: str) -> str:
        return f"{self.bucket}/{self._key(relative)}"

    @property
    def blobs(self) -> str:
        return self._object("blobs/sha256/*")

    @property
    def blobs_prefix(self) -> str:
        return self._key("blobs/*")

    @property
    def app_objects(self) -> str:
        return self._object(f"{self.app}/*")

    @property
    def app_prefix(self) -> str:
        return self._key(f"{self.app}/*")

    def folder(self, name: str) -> str:
        return self._object(f"{self.app}/{name}/*")

    def ledger(self, env: str) -> str:
        return self._object(f"{self.app}/ledger/{env}/*")


def _statement(sid: str, actions, resources, *, condition: dict | None = None, principal: dict | None = None) -> dict:
    statement: dict = {"Sid": sid, "Effect": "Allow"}
    if principal is not None:
        statement["Principal"] = principal
    statement["Action"] = sorted(actions)
    statement["Resource"] = list(resources)
    if condition:
        statement["Condition"] = condition
    return statement


def _document(statements: list[dict]) -> dict:
    return {"Version": POLICY_VERSION, "Statement": statements}


def _account_of(role: str | None) -> str | None:
    if role and role.startswith("arn:") and len(role.split(":")) > 4:
        return role.split(":")[4] or None
    return None


def _role_arn(role: str | None, account: str | None) -> str | None:
    """The role as an ARN: a bare name is completed with `account`."""
    if not role:
        return None
    if role.startswith("arn:"):
        return role
    if not account:
        return role
    return f"arn:{PARTITION}:iam::{account}:role/{role.removeprefix('role/')}"
