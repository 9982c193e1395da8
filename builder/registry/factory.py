"""Wiring from the project config: the registry's store, the signer, the trusted keys.

Commands call these once and hand the results to the library functions, so
nothing deep inside builds its own AWS client. When `relay local`'s sandbox is
up, the command hands its `LocalSandbox` in here: sessions go to its endpoint
with its keys, and its key is trusted; it signs only when nothing else is
configured (no KMS key, no RELAY_SIGNING_KEY, no `[registry.signing]` key), so
a project with its own key signs with it locally too. Nothing reads the
sandbox behind the caller's back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from builder.aws.kms import Kms
from builder.aws.s3 import S3Bucket, TransferSettings
from builder.aws.session import AwsTarget, RequestCounter, open_session
from builder.config import Project, Registry
from builder.errors import ConfigError
from builder.registry.layout import Layout
from builder.registry.signing import SIGNING_KEY_ENV, Ed25519Signer, KmsSigner, Signer, TrustedKeys, signing_key_from_env
from builder.registry.store import S3Store

if TYPE_CHECKING:
    from builder.local.state import LocalSandbox


def through(sandbox: LocalSandbox | None, target: AwsTarget) -> AwsTarget:
    """`target` as reached inside the sandbox (its endpoint and keys), or unchanged without one."""
    if sandbox is None:
        return target
    return target.at_endpoint(sandbox.endpoint, sandbox.credentials, sandbox.region)


def registry_target(project: Project, sandbox: LocalSandbox | None = None) -> AwsTarget:
    registry = project.require_registry()
    return through(sandbox, AwsTarget(region=registry.region, role=registry.role, account=registry.account,
                                      profile=registry.profile,
                                      session_name=f"relay-{project.name}"[:64]))


def open_store(
    project: Project,
    *,
    sandbox: LocalSandbox | None = None,
    counter: RequestCounter | None = None,
    transfer: TransferSettings | None = None,
) -> S3Store:
    """The project's registry: its bucket through a session in the registry account."""
    registry = project.require_registry()
    session = open_session(registry_target(project, sandbox), counter=counter)
    return S3Store(S3Bucket(session, registry.bucket, transfer=transfer or TransferSettings()), Layout(registry.prefix))


@attrs.frozen
class SigningKey:
    """The signer chosen for a run, and where its key came from (for the user: which key signs)."""

    signer: Signer
    source: str

    @property
    def keyid(self) -> str:
        return self.signer.keyid


def choose_signer(
    project: Project,
    store: S3Store,
    *,
    sandbox: LocalSandbox | None = None,
    environ: Mapping[str, str] = os.environ,
) -> SigningKey:
    """The key that signs: KMS when configured, else RELAY_SIGNING_KEY, else the configured file, else the sandbox's.

    A configured key file that is missing is an error, also with the sandbox up:
    signing with another key than the one relay.toml names is what made local
    releases unverifiable elsewhere.
    """
    registry = project.require_registry()
    signing = registry.signing
    if signing is not None and signing.kind == "kms":
        if not signing.key_id:
            raise ConfigError(f"{project.config_file.name}: registry.signing: kind \"kms\" needs key_id",
                              hint="Set key_id to the KMS key id, ARN or alias (an ECC_NIST_P256 SIGN_VERIFY key).")
        return SigningKey(KmsSigner(Kms(store.bucket.session), signing.key_id), f"KMS key {signing.key_id}")
    from_env = signing_key_from_env(dict(environ))
    if from_env is not None:
        value = environ[SIGNING_KEY_ENV].strip()
        return SigningKey(from_env, SIGNING_KEY_ENV if "-----BEGIN" in value else f"{SIGNING_KEY_ENV}={value}")
    if signing is not None and signing.key is not None:
        if not signing.key.is_file():
            raise ConfigError(f"{project.config_file.name}: registry.signing.key: no such file: {signing.key}",
                              hint="Create one with `relay keygen --out PATH`, or set RELAY_SIGNING_KEY.")
        return SigningKey(Ed25519Signer.from_pem(signing.key.read_bytes(), source=str(signing.key)),
                          f"{project.config_file.name} [registry.signing] {_shown(signing.key, project.root)}")
    if sandbox is not None:
        return SigningKey(_key_file(sandbox.signing_key, what="relay local's signing key"),
                          f"relay local's key {_shown(sandbox.signing_key, project.root)}")
    raise ConfigError(
        "no signing key: every release is signed",
        hint="Set [registry.signing] kind = \"ed25519\" and key = PATH (see `relay keygen`), "
             "kind = \"kms\" and key_id, or RELAY_SIGNING_KEY.",
    )


def open_signer(
    project: Project,
    store: S3Store,
    *,
    sandbox: LocalSandbox | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Signer:
    """The key that signs (see `choose_signer`)."""
    return choose_signer(project, store, sandbox=sandbox, environ=environ).signer


def trusted_keys(project: Project, sandbox: LocalSandbox | None = None) -> TrustedKeys:
    """The keys pinned in the config, plus the sandbox's own key when it is in use."""
    registry: Registry = project.require_registry()
    pinned = registry.trusted_keys
    if sandbox is not None and sandbox.trusted_key not in pinned:
        pinned = (*pinned, sandbox.trusted_key)
    return TrustedKeys.from_config(pinned)


def _shown(path: Path, root: Path) -> str:
    """`path` relative to the project when it is inside it (shorter, and the same on every machine)."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _key_file(path: Path, *, what: str) -> Ed25519Signer:
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror}",
                          hint="`relay local down` then `relay local up` makes a new one.") from None
    return Ed25519Signer.from_pem(pem, source=str(path))
