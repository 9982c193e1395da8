"""Preparing a sandbox for a project: its signing key, the registry bucket, the roles.

`prepare_accounts` runs on every `relay local up`, on a fresh sandbox and on a
running one: it makes whatever the current relay.toml needs and does not exist
yet (an environment added since, a function's execution role, another bucket),
and touches nothing else, so published releases and the sandbox's key stay.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path

import attrs

from builder.config import Project, TrustedKey
from builder.local.state import STATE_DIR, LocalSandbox


class Resource(StrEnum):
    BUCKET = "registry bucket"
    DEPLOYER_ROLE = "deployer role"
    EXECUTION_ROLE = "execution role"


@attrs.frozen
class Prepared:
    """One thing the sandbox holds for the project; `new` when this `up` made it."""

    kind: Resource
    name: str  # s3://bucket or the role's ARN
    environment: str | None  # the environment it serves; None for the registry's bucket
    new: bool

    def to_json(self) -> dict:
        return {"kind": str(self.kind), "name": self.name, "environment": self.environment, "new": self.new}


def make_signing_key(root: Path) -> tuple[Path, TrustedKey]:
    """A new Ed25519 key pair under .relay/: the private key's path and its public half to trust."""
    from builder.registry.signing import generate_key_file

    path = root / STATE_DIR / "local-signing.key"
    generated = generate_key_file(path, force=True)
    return path, TrustedKey(keyid=generated.keyid, public_key=generated.public_pem)


def prepare_accounts(project: Project, sandbox: LocalSandbox, *, known: Iterable[str] = ()) -> tuple[Prepared, ...]:
    """The registry bucket, each environment's deployer role and its functions' execution roles.

    Each exists afterwards; `known` are the names an earlier `up` of this
    sandbox prepared: a role not among them is reported as new.
    """
    from builder.aws.iam import Iam
    from builder.aws.session import AwsTarget, open_session
    from builder.registry.factory import open_store

    def through_sandbox(target: AwsTarget) -> AwsTarget:
        return target.at_endpoint(sandbox.endpoint, sandbox.credentials, sandbox.region)

    seen = set(known)
    prepared: list[Prepared] = []
    if project.registry is not None:  # reached as `relay publish` reaches it (its role and region, if any)
        created = open_store(project, sandbox=sandbox).bucket.ensure_bucket()
        prepared.append(Prepared(Resource.BUCKET, f"s3://{project.registry.bucket}", None, created))
    for env in project.environments.values():
        session = open_session(through_sandbox(AwsTarget(region=env.region, role=env.role, account=env.account,
                                                         external_id=env.external_id)))
        iam = Iam(session)
        wanted = []
        if env.role:
            wanted.append((Resource.DEPLOYER_ROLE, env.role))
        wanted += [(Resource.EXECUTION_ROLE, role) for fn in project.functions.values()
                   if (role := fn.role_in(env.account, env.region))]
        for kind, arn in dict.fromkeys(wanted):  # two functions may share a role
            made = iam.ensure_role(arn.rsplit("/", 1)[-1], for_lambda=kind is Resource.EXECUTION_ROLE)
            prepared.append(Prepared(kind, made, env.name, arn not in seen and made not in seen))
    return tuple(prepared)
