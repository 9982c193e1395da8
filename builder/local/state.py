"""`.relay/local.json`: what `relay local up` started, and the sandbox value other commands use.

A command that talks to AWS reads the file once (`read_sandbox`) and hands
the resulting `LocalSandbox` to the session factories (endpoint, keys,
region) and to the signer (its key signs, and is trusted); it never changes
the process environment. Settings the user exported still win: with
`AWS_ENDPOINT_URL` pointing elsewhere the sandbox is not used at all, an
exported `AWS_DEFAULT_REGION` or `RELAY_SIGNING_KEY` wins over the sandbox's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import attrs

from builder.aws.credentials import StaticCredentials
from builder.config import TrustedKey
from builder.frozen import to_tuple

STATE_DIR = ".relay"
STATE_FILE = "local.json"
# moto's default account: credentials that assume no role land here. (Setting
# MOTO_ACCOUNT_ID instead stops moto mapping assumed roles to their accounts.)
REGISTRY_ACCOUNT = "123456789012"
LOCAL_CREDENTIALS = StaticCredentials(access_key_id="relay-local", secret_access_key="relay-local")


@attrs.frozen
class LocalState:
    """The file `relay local up` writes: the server it started and how to use it."""

    endpoint: str
    pid: int
    port: int
    region: str
    registry_account: str
    signing_key: str  # path of the Ed25519 private key
    trusted_key: dict  # {"keyid", "public_key"}
    # What `up` prepared so far (s3://bucket, role ARNs): a later `up` reports the rest as new.
    prepared: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)

    def to_json(self) -> dict:
        return attrs.asdict(self)


@attrs.frozen
class LocalSandbox:
    """Where a command's AWS calls go and which key signs, when the project's sandbox is up."""

    endpoint: str
    region: str
    credentials: StaticCredentials
    signing_key: Path
    trusted_key: TrustedKey
    state_file: Path

    def child_environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """`base` pointed at the sandbox, for a child process (e.g. a handler run by `relay invoke`)."""
        env = {k: v for k, v in base.items() if k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN")}
        env.update(AWS_ENDPOINT_URL=self.endpoint, AWS_ACCESS_KEY_ID=self.credentials.access_key_id,
                   AWS_SECRET_ACCESS_KEY=self.credentials.secret_access_key, AWS_DEFAULT_REGION=self.region)
        return env


@attrs.frozen
class LocalStatus:
    running: bool
    endpoint: str | None
    pid: int | None
    state_file: str

    def to_json(self) -> dict:
        return attrs.asdict(self)


def state_path(root: Path) -> Path:
    return root / STATE_DIR / STATE_FILE


def read_state(root: Path) -> LocalState | None:
    path = state_path(root)
    if not path.is_file():
        return None
    document = json.loads(path.read_text(encoding="utf-8"))
    known = {field.name for field in attrs.fields(LocalState)}
    return LocalState(**{k: v for k, v in document.items() if k in known})  # older files carry more keys


def write_state(root: Path, state: LocalState) -> None:
    path = state_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".tmp")
    staged.write_text(json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(staged, path)


def read_sandbox(root: Path, environ: Mapping[str, str]) -> LocalSandbox | None:
    """The project's sandbox as a value, or None when none was started or the user exported another endpoint.

    Reads `environ`, never writes it. (Whether the server still answers is
    not checked here: a dead sandbox fails the first call, naming its endpoint.)
    """
    state = read_state(root)
    if state is None:
        return None
    exported = environ.get("AWS_ENDPOINT_URL")
    if exported and exported != state.endpoint:
        return None
    return LocalSandbox(
        endpoint=state.endpoint,
        region=environ.get("AWS_DEFAULT_REGION") or state.region,
        credentials=LOCAL_CREDENTIALS,
        signing_key=Path(state.signing_key),
        trusted_key=TrustedKey(**state.trusted_key),
        state_file=state_path(root),
    )
