"""Preparing a fresh sandbox for a project: its signing key, the registry bucket, the roles."""

from __future__ import annotations

from pathlib import Path

from builder.config import Project, TrustedKey
from builder.local.state import STATE_DIR, LocalSandbox


def make_signing_key(root: Path) -> tuple[Path, TrustedKey]:
    """A new Ed25519 key pair under .relay/: the private key's path and its public half to trust."""
    from builder.registry.signing import generate_key_file

    path = root / STATE_DIR / "local-signing.key"
    generated = generate_key_file(path, force=True)
    return path, TrustedKey(keyid=generated.keyid, public_key=generated.public_pem)


def prepare_accounts(project: Project, sandbox: LocalSandbox) -> None:
    """The registry bucket, each environment's deployer role and its functions' execution roles."""
    from builder.aws.iam import Iam
    from builder.aws.s3 import S3Bucket
    from builder.aws.session import AwsTarget, open_session

    def through_sandbox(target: AwsTarget) -> AwsTarget:
        return target.at_endpoint(sandbox.endpoint, sandbox.credentials, sandbox.region)

    registry = open_session(through_sandbox(AwsTarget()))
    if project.registry is not None:
        S3Bucket(registry, project.registry.bucket).ensure_bucket()
    for env in project.environments.values():
        session = open_session(through_sandbox(AwsTarget(region=env.region, role=env.role, account=env.account,
                                                         external_id=env.external_id)))
        iam = Iam(session)
        if env.role:
            iam.ensure_role(env.role.rsplit("/", 1)[-1])
        for fn in project.functions.values():
            role = fn.role_in(env.account, env.region)
            if role:
                iam.ensure_role(role.rsplit("/", 1)[-1], for_lambda=True)
