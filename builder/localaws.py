"""`relay local`: an embedded AWS (a moto server on 127.0.0.1) for demos and development.

`up` starts `python -m moto.server` in the background on a free port, prepares
it as three accounts (the registry/CI account is moto's default one; staging
and prod are reached by assuming the environments' roles), creates the
registry bucket, the deployer roles, the functions' execution roles, turns off
Docker for Lambda, makes a signing key, and writes `.relay/local.json`. Every
other relay command run in that project then uses the sandbox without flags
(`apply_local_settings`). `down` stops only the server `up` started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import attrs

from builder.config import Project, TrustedKey
from builder.errors import ConfigError, RelayError

STATE_DIR = ".relay"
STATE_FILE = "local.json"
# moto's default account: credentials that assume no role land here. (Setting
# MOTO_ACCOUNT_ID instead stops moto mapping assumed roles to their accounts.)
REGISTRY_ACCOUNT = "123456789012"
START_TIMEOUT = 60.0
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "relay-local", "AWS_SECRET_ACCESS_KEY": "relay-local"}


class LocalAwsError(RelayError):
    exit_code = 11
    hint = "See .relay/moto.log; `relay local down` then `relay local up` starts afresh."


@attrs.frozen
class LocalState:
    endpoint: str
    pid: int
    port: int
    region: str
    registry_account: str
    signing_key: str  # path of the Ed25519 private key
    trusted_key: dict  # {"keyid", "public_key"}
    announced: bool = False

    def to_json(self) -> dict:
        return attrs.asdict(self)


@attrs.frozen
class LocalStatus:
    running: bool
    endpoint: str | None
    pid: int | None
    state_file: str

    def to_json(self) -> dict:
        return attrs.asdict(self)

    def summary(self) -> str:
        if self.running:
            return f"local AWS is running at {self.endpoint} (pid {self.pid}); settings in {self.state_file}"
        return "local AWS is not running (start it with `relay local up`)"


def state_path(root: Path) -> Path:
    return root / STATE_DIR / STATE_FILE


def read_state(root: Path) -> LocalState | None:
    path = state_path(root)
    if not path.is_file():
        return None
    return LocalState(**json.loads(path.read_text(encoding="utf-8")))


def write_state(root: Path, state: LocalState) -> None:
    path = state_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".tmp")
    staged.write_text(json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(staged, path)


# -- up / down / status -----------------------------------------------------------------------


def local_up(project: Project) -> LocalState:
    """Start (or reuse) the project's sandbox and prepare it for the project's config."""
    current = read_state(project.root)
    if current is not None and _alive(current):
        return current
    if current is not None:  # a server that died: forget it
        state_path(project.root).unlink()
    region = (project.registry.region if project.registry else None) or "us-east-1"
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    pid = _start_server(project.root, port)
    try:
        _wait_until_up(endpoint, pid, project.root)
        _configure(endpoint)
        key_path, trusted = _signing_key(project.root)
        state = LocalState(endpoint=endpoint, pid=pid, port=port, region=region,
                           registry_account=REGISTRY_ACCOUNT, signing_key=str(key_path), trusted_key=trusted)
        _prepare_accounts(project, state)
    except BaseException:
        _stop(pid)
        raise
    write_state(project.root, state)
    return state


def local_down(root: Path) -> LocalStatus:
    state = read_state(root)
    if state is not None:
        if _is_our_server(state):
            _stop(state.pid)
        state_path(root).unlink(missing_ok=True)
    return LocalStatus(running=False, endpoint=None, pid=None, state_file=str(state_path(root)))


def local_status(root: Path) -> LocalStatus:
    state = read_state(root)
    running = state is not None and _alive(state)
    return LocalStatus(
        running=running,
        endpoint=state.endpoint if running and state else None,
        pid=state.pid if running and state else None,
        state_file=str(state_path(root)),
    )


# -- using it from every other command -----------------------------------------------------------


def apply_local_settings(project: Project, environ: dict[str, str] | os._Environ = os.environ) -> tuple[Project, str | None]:
    """Point this process at the project's sandbox when one is up.

    Returns the project with the sandbox's signing key trusted, and a note to
    show the user the first time a command uses the sandbox (else None).
    Settings the caller exported (AWS_ENDPOINT_URL) win over the sandbox's.
    """
    state = read_state(project.root)
    if state is None or ("AWS_ENDPOINT_URL" in environ and environ["AWS_ENDPOINT_URL"] != state.endpoint):
        return project, None
    environ["AWS_ENDPOINT_URL"] = state.endpoint
    for name, value in LOCAL_CREDENTIALS.items():
        environ[name] = value
    environ.pop("AWS_PROFILE", None)
    environ.pop("AWS_SESSION_TOKEN", None)
    environ.setdefault("AWS_DEFAULT_REGION", state.region)
    environ.setdefault("RELAY_SIGNING_KEY", state.signing_key)
    project = _trusting(project, TrustedKey(**state.trusted_key))
    note = None
    if not state.announced:
        note = f"using the local AWS at {state.endpoint} (relay local; settings in {state_path(project.root)})"
        write_state(project.root, attrs.evolve(state, announced=True))
    return project, note


def _trusting(project: Project, key: TrustedKey) -> Project:
    if project.registry is None or key in project.registry.trusted_keys:
        return project
    registry = attrs.evolve(project.registry, trusted_keys=(*project.registry.trusted_keys, key))
    return attrs.evolve(project, registry=registry)


# -- the server --------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(root: Path, port: int) -> int:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        raise ConfigError("moto[server] is not installed", hint="pip install 'lambda-relay[local]'") from None
    log = root / STATE_DIR / "moto.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # outlives this command; `relay local down` stops it
        )
    return proc.pid


def _wait_until_up(endpoint: str, pid: int, root: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            raise LocalAwsError(f"the moto server exited at start; see {root / STATE_DIR / 'moto.log'}")
        try:
            _call(f"{endpoint}/moto-api/", method="GET")
            return
        except OSError:
            time.sleep(0.1)
    raise LocalAwsError(f"the moto server did not answer on {endpoint} within {START_TIMEOUT:.0f}s")


def _configure(endpoint: str) -> None:
    _call(f"{endpoint}/moto-api/config", {"lambda": {"use_docker": False}})


def _call(url: str, body: dict | None = None, *, method: str = "POST") -> bytes:
    import urllib.request  # here: every relay command imports this module, few call moto

    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    request = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.read()


def _alive(state: LocalState) -> bool:
    if not _is_our_server(state):
        return False
    try:
        _call(f"{state.endpoint}/moto-api/", method="GET")
        return True
    except OSError:  # urllib's URLError is an OSError
        return False


def _is_our_server(state: LocalState) -> bool:
    """The pid is still the moto server `up` started on that port (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return _pid_alive(state.pid) and sys.platform != "linux"
    return b"moto.server" in cmdline and str(state.port).encode() in cmdline


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists": treat it as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def _stop(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.05)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    try:  # reap it when it is our child (same process, e.g. tests)
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


# -- preparing the accounts ------------------------------------------------------------------


def _signing_key(root: Path) -> tuple[Path, dict]:
    from builder.registry.signing import generate_key_file

    path = root / STATE_DIR / "local-signing.key"
    generated = generate_key_file(path, force=True)
    return path, {"keyid": generated.keyid, "public_key": generated.public_pem}


def _prepare_accounts(project: Project, state: LocalState) -> None:
    from builder.aws.iam import Iam
    from builder.aws.s3 import S3Bucket
    from builder.aws.session import AwsTarget, open_session

    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", *LOCAL_CREDENTIALS)}
    os.environ["AWS_ENDPOINT_URL"] = state.endpoint
    os.environ.update(LOCAL_CREDENTIALS)
    try:
        registry = open_session(AwsTarget(region=state.region))
        if project.registry is not None:
            S3Bucket(registry, project.registry.bucket).ensure_bucket()
        for env in project.environments.values():
            session = open_session(AwsTarget(region=env.region, role=env.role, account=env.account,
                                             external_id=env.external_id))
            iam = Iam(session)
            if env.role:
                iam.ensure_role(env.role.rsplit("/", 1)[-1])
            for fn in project.functions.values():
                role = fn.role_in(env.account, env.region)
                if role:
                    iam.ensure_role(role.rsplit("/", 1)[-1], for_lambda=True)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
