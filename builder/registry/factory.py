"""Wiring from the project config: the registry's store, the signer, the trusted keys.

Commands call these once and hand the results to the library functions, so
nothing deep inside builds its own AWS client.
"""

from __future__ import annotations

import os

from builder.aws.kms import Kms
from builder.aws.s3 import S3Bucket, TransferSettings
from builder.aws.session import AwsTarget, RequestCounter, open_session
from builder.config import Project, Registry
from builder.errors import ConfigError
from builder.registry.layout import Layout
from builder.registry.signing import Ed25519Signer, KmsSigner, Signer, TrustedKeys, signing_key_from_env
from builder.registry.store import S3Store


def registry_target(project: Project) -> AwsTarget:
    registry = project.require_registry()
    return AwsTarget(region=registry.region, role=registry.role, account=registry.account,
                     session_name=f"relay-{project.name}"[:64])


def open_store(
    project: Project,
    *,
    counter: RequestCounter | None = None,
    transfer: TransferSettings = TransferSettings(),
) -> S3Store:
    """The project's registry: its bucket through a session in the registry account."""
    registry = project.require_registry()
    session = open_session(registry_target(project), counter=counter)
    return S3Store(S3Bucket(session, registry.bucket, transfer=transfer), Layout(registry.prefix))


def open_signer(project: Project, store: S3Store, *, environ: os._Environ | dict[str, str] = os.environ) -> Signer:
    """The key that signs: KMS when configured, else RELAY_SIGNING_KEY, else the configured key file."""
    registry = project.require_registry()
    signing = registry.signing
    if signing is not None and signing.kind == "kms":
        if not signing.key_id:
            raise ConfigError(f"{project.config_file.name}: registry.signing: kind \"kms\" needs key_id",
                              hint="Set key_id to the KMS key id, ARN or alias (an ECC_NIST_P256 SIGN_VERIFY key).")
        return KmsSigner(Kms(store.bucket.session), signing.key_id)
    from_env = signing_key_from_env(environ)
    if from_env is not None:
        return from_env
    if signing is not None and signing.key is not None:
        if not signing.key.is_file():
            raise ConfigError(f"{project.config_file.name}: registry.signing.key: no such file: {signing.key}",
                              hint="Create one with `relay keygen --out PATH`, or set RELAY_SIGNING_KEY.")
        return Ed25519Signer.from_pem(signing.key.read_bytes(), source=str(signing.key))
    raise ConfigError(
        "no signing key: every release is signed",
        hint="Set [registry.signing] kind = \"ed25519\" and key = PATH (see `relay keygen`), "
             "kind = \"kms\" and key_id, or RELAY_SIGNING_KEY.",
    )


def trusted_keys(project: Project) -> TrustedKeys:
    registry: Registry = project.require_registry()
    return TrustedKeys.from_config(registry.trusted_keys)
