"""`relay local up | down | status`: start the project's sandbox (or prepare the running one), stop it, say whether it runs.

`up` starts `python -m moto.server` in the background on a free port,
prepares it as three accounts (the registry/CI account is moto's default one;
staging and prod are reached by assuming the environments' roles), creates
the registry bucket, the deployer roles and the functions' execution roles,
turns off Docker for Lambda, makes a signing key, and writes
`.relay/local.json`. Other commands in that project then use the sandbox
without flags (`state.read_sandbox`). On a sandbox that runs already, `up`
prepares what the current relay.toml needs and the sandbox lacks (an
environment added since, a role, a bucket) and keeps everything else: the
published releases, the ledgers, the sandbox's key. `down` stops only the
server `up` started.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from builder.config import Project, TrustedKey
from builder.frozen import to_tuple
from builder.local import server
from builder.local.accounts import Prepared, make_signing_key, prepare_accounts
from builder.local.state import (
    LOCAL_CREDENTIALS,
    REGISTRY_ACCOUNT,
    LocalSandbox,
    LocalState,
    LocalStatus,
    read_state,
    state_path,
    write_state,
)

DEFAULT_REGION = "us-east-1"


@attrs.frozen
class LocalUp:
    """What `relay local up` did: started a sandbox or reused the running one, and what it prepared in it."""

    state: LocalState
    started: bool
    prepared: tuple[Prepared, ...] = attrs.field(converter=to_tuple)

    @property
    def new(self) -> tuple[Prepared, ...]:
        return tuple(p for p in self.prepared if p.new)

    def to_json(self) -> dict:
        return {
            "running": True,
            "started": self.started,
            "endpoint": self.state.endpoint,
            "pid": self.state.pid,
            "region": self.state.region,
            "signing_key": {"keyid": self.state.trusted_key["keyid"], "path": self.state.signing_key},
            "prepared": [p.to_json() for p in self.prepared],
        }


def local_up(project: Project) -> LocalUp:
    """Start the project's sandbox, or reuse the running one; either way prepare it for the project's config."""
    current = read_state(project.root)
    if current is not None and server.alive(current):
        return _prepare(project, current, started=False)
    if current is not None:  # a server that died: forget it
        state_path(project.root).unlink()
    region = (project.registry.region if project.registry else None) or DEFAULT_REGION
    port = server.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    pid = server.start_server(project.root, port)
    try:
        server.wait_until_up(endpoint, pid, project.root)
        server.configure(endpoint)
        key_path, trusted = make_signing_key(project.root)
        state = LocalState(endpoint=endpoint, pid=pid, port=port, region=region, registry_account=REGISTRY_ACCOUNT,
                           signing_key=str(key_path), trusted_key={"keyid": trusted.keyid, "public_key": trusted.public_key})
        return _prepare(project, state, started=True)
    except BaseException:
        server.stop(pid)
        raise


def _prepare(project: Project, state: LocalState, *, started: bool) -> LocalUp:
    sandbox = LocalSandbox(endpoint=state.endpoint, region=state.region, credentials=LOCAL_CREDENTIALS,
                           signing_key=Path(state.signing_key), trusted_key=TrustedKey(**state.trusted_key),
                           state_file=state_path(project.root))
    prepared = prepare_accounts(project, sandbox, known=state.prepared)
    names = dict.fromkeys((*state.prepared, *(p.name for p in prepared)))
    state = attrs.evolve(state, prepared=tuple(names))
    write_state(project.root, state)
    return LocalUp(state=state, started=started, prepared=prepared)


def local_down(root: Path) -> LocalStatus:
    state = read_state(root)
    if state is not None:
        if server.is_our_server(state):
            server.stop(state.pid)
        state_path(root).unlink(missing_ok=True)
    return LocalStatus(running=False, endpoint=None, pid=None, state_file=str(state_path(root)))


def local_status(root: Path) -> LocalStatus:
    state = read_state(root)
    running = state is not None and server.alive(state)
    return LocalStatus(
        running=running,
        endpoint=state.endpoint if running and state else None,
        pid=state.pid if running and state else None,
        state_file=str(state_path(root)),
    )
