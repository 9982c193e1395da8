"""`relay local up | down | status`: start (or reuse) the project's sandbox, stop it, say whether it runs.

`up` starts `python -m moto.server` in the background on a free port,
prepares it as three accounts (the registry/CI account is moto's default one;
staging and prod are reached by assuming the environments' roles), creates
the registry bucket, the deployer roles and the functions' execution roles,
turns off Docker for Lambda, makes a signing key, and writes
`.relay/local.json`. Other commands in that project then use the sandbox
without flags (`state.read_sandbox`). `down` stops only the server `up` started.
"""

from __future__ import annotations

from pathlib import Path

from builder.config import Project
from builder.local import server
from builder.local.accounts import make_signing_key, prepare_accounts
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


def local_up(project: Project) -> LocalState:
    """Start (or reuse) the project's sandbox and prepare it for the project's config."""
    current = read_state(project.root)
    if current is not None and server.alive(current):
        return current
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
        prepare_accounts(project, LocalSandbox(endpoint=endpoint, region=region, credentials=LOCAL_CREDENTIALS,
                                               signing_key=key_path, trusted_key=trusted,
                                               state_file=state_path(project.root)))
        state = LocalState(endpoint=endpoint, pid=pid, port=port, region=region, registry_account=REGISTRY_ACCOUNT,
                           signing_key=str(key_path), trusted_key={"keyid": trusted.keyid, "public_key": trusted.public_key})
    except BaseException:
        server.stop(pid)
        raise
    write_state(project.root, state)
    return state


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
