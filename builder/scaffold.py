"""`relay init`: scaffold a project that locks, builds and invokes at once.

The scaffold is one function (`hello`) using one layer (`shared`, a local
package with no third-party dependencies, so it builds offline), the hello
function's empty lock (what `relay lock` writes for an `.in` with no
requirements, so `relay lock --check` and `relay build` pass straight away), an
event to invoke it with, a `.gitignore`, and the CI pipeline of the user's
choice: the files of relay's `pipelines/` (see `pipeline_templates`), the very
ones its tests run. Registry and environments are filled with placeholders
that validate and say they are placeholders; `relay local up` makes exactly
them in the local sandbox (bucket, deployer roles, the function's execution
role), so the project publishes and promotes there with no edit. It also
gets its own signing key (`signing.key`, gitignored like every `*.key`, and
`signing.key.pub`), configured to sign and pinned as trusted, so what it
publishes verifies wherever relay.toml goes.

Nothing is ever overwritten: when any file the scaffold would write exists,
nothing is written at all.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import attrs

from builder.errors import UsageError
from builder.frozen import to_tuple
from builder.lock.lockfile import LockHeader, input_sha256, with_header
from builder.pipeline_templates import PIPELINE_FILES, pipeline_files
from builder.runtime.runtimes import RUNTIMES, lambda_runtime

DEFAULT_RUNTIME = "python3.12"
NO_PIPELINE = "none"
PIPELINES = (*PIPELINE_FILES, NO_PIPELINE)
DEFAULT_PIPELINE = "github"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_REQUIREMENTS_IN = "functions/hello/requirements.in"
LOCK_FILE = "functions/hello/requirements.txt"
SIGNING_KEY = "signing.key"
SIGNING_KEY_PUB = "signing.key.pub"


def supported_runtimes() -> tuple[str, ...]:
    """The Lambda runtimes relay targets (its one table of them)."""
    return tuple(RUNTIMES)


@attrs.frozen
class InitResult:
    root: Path
    app: str
    runtime: str
    pipeline: str
    files: tuple[str, ...] = attrs.field(converter=to_tuple)  # relative, "/" separated, in writing order

    def to_json(self) -> dict:
        return {
            "root": str(self.root),
            "app": self.app,
            "runtime": self.runtime,
            "pipeline": self.pipeline,
            "files": list(self.files),
        }


def init_project(
    folder: Path,
    *,
    name: str | None = None,
    runtime: str = DEFAULT_RUNTIME,
    pipeline: str = DEFAULT_PIPELINE,
) -> InitResult:
    """Write a new project into `folder` (created when missing); refuse to overwrite anything."""
    root = Path(os.path.abspath(folder))
    if root.exists() and not root.is_dir():
        raise UsageError(f"{folder} exists and is not a folder", hint="Pass a folder to create the project in.")
    app = _app_name(name, root)
    _check_choice("runtime", runtime, supported_runtimes())
    _check_choice("pipeline", pipeline, PIPELINES)
    names = (*project_files(app, runtime, pipeline, keyid=""), LOCK_FILE, SIGNING_KEY, SIGNING_KEY_PUB)
    existing = [rel for rel in names if (root / rel).exists() or (root / rel).is_symlink()]
    if existing:
        shown = ", ".join(existing[:5]) + (f" and {len(existing) - 5} more" if len(existing) > 5 else "")
        raise UsageError(
            f"relay init would overwrite {shown} in {root}",
            hint="relay init only writes new files: run it in an empty folder, or move those files away.",
        )
    from builder.registry.signing import generate_key_file

    key = generate_key_file(root / SIGNING_KEY)  # refuses a key file that appeared since the check
    files = project_files(app, runtime, pipeline, keyid=key.keyid)
    for rel, text in files.items():
        _write_new(root / rel, text)
    # The lock's header hashes the .in as written, so it is made after the .in exists.
    _write_new(root / LOCK_FILE, empty_lock(root / _REQUIREMENTS_IN, runtime))
    return InitResult(root=root, app=app, runtime=runtime, pipeline=pipeline,
                      files=(*files, LOCK_FILE, SIGNING_KEY, SIGNING_KEY_PUB))


def empty_lock(in_path: Path, runtime: str) -> str:
    """Exactly what `relay lock` writes for an `.in` without requirements."""
    return with_header("", LockHeader(input_sha256=input_sha256(in_path), runtime=runtime))


def app_name_from_folder(folder_name: str) -> str | None:
    """`my app.v2` -> `my-app-v2`; None when nothing usable is left."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", folder_name).strip("-_")
    cleaned = re.sub(r"^[^A-Za-z]+", "", cleaned)[:64].rstrip("-_")
    return cleaned if cleaned and _NAME.match(cleaned) else None


def _app_name(name: str | None, root: Path) -> str:
    if name is not None:
        if not _NAME.match(name):
            raise UsageError(
                f"--name {name!r} is not a valid app name",
                hint="Use a letter, then up to 63 letters, digits, '-' or '_'.",
            )
        return name
    derived = app_name_from_folder(root.name)
    if derived is None:
        raise UsageError(f"cannot make an app name from the folder name {root.name!r}", hint="Pass --name APP.")
    return derived


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UsageError(f"unknown {what} {value!r}", hint=f"Use one of: {', '.join(choices)}.")


def _write_new(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # "x": a file that appeared since the check is still not overwritten.
    with open(path, "x", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


# -- the files --------------------------------------------------------------------------------


def project_files(app: str, runtime: str, pipeline: str, *, keyid: str) -> dict[str, str]:
    """Relative path -> text of every file the scaffold writes (but the lock and the key pair), in order.

    `keyid`: the scaffold's signing key, which relay.toml trusts.
    """
    files = {
        "relay.toml": relay_toml(app, runtime, keyid),
        ".gitignore": GITIGNORE,
        "functions/hello/hello/__init__.py": "",
        "functions/hello/hello/handler.py": HANDLER,
        _REQUIREMENTS_IN: REQUIREMENTS_IN,
        "libs/shared/pyproject.toml": SHARED_PYPROJECT.format(app=app),
        "libs/shared/shared/__init__.py": SHARED_INIT,
        "events/hello.json": '{\n  "name": "relay"\n}\n',
    }
    if pipeline != NO_PIPELINE:
        files.update(pipeline_files(pipeline, lambda_runtime(runtime).python))
    return files


def registry_bucket(app: str) -> str:
    """A bucket name the schema accepts (lowercase, 3-63 chars), clearly a placeholder."""
    suffix = "-relay-artifacts"
    base = re.sub(r"[^a-z0-9-]+", "-", app.lower())[: 63 - len(suffix)].strip("-")
    return f"{base or 'app'}{suffix}"


def execution_role_name(app: str, function: str) -> str:
    """The placeholder execution role of one function: IAM's 64-character limit kept."""
    return f"{app[: 63 - len(function)]}-{function}"


def relay_toml(app: str, runtime: str, keyid: str) -> str:
    return textwrap.dedent(f"""\
        # {app}: Lambda functions built, versioned and promoted with relay.
        #
        #   relay lock                                    # requirements.in -> hashed requirements.txt
        #   relay build                                   # dist/: one zip + manifest per function and layer
        #   relay invoke hello --event events/hello.json  # run the built function locally

        [app]
        name = "{app}"
        runtime = "{runtime}"
        architecture = "x86_64"

        # Code every function shares, shipped as a layer (importable from /opt/python).
        [layers.shared]
        description = "{app}'s shared code"
        packages = ["libs/shared"]

        [functions.hello]
        description = "Say hello"
        source = "functions/hello"
        handler = "hello.handler.handle"
        requirements = "functions/hello/requirements.in"
        layers = ["shared"]
        memory = 128
        timeout = 10
        environment = {{ GREETING = "Hello" }}
        # The role the function runs as, in each environment's account. PLACEHOLDER: `relay local up`
        # creates it in the local sandbox; in your accounts, name a role that exists (or create this one).
        role = "arn:aws:iam::{{account}}:role/{execution_role_name(app, "hello")}"

        # The S3 artifact registry `relay publish` writes to.
        # PLACEHOLDER: use your own bucket and region (`relay local up` creates this one locally).
        [registry]
        bucket = "{registry_bucket(app)}"
        prefix = "relay"
        region = "us-east-1"
        # Every release is signed. `relay init` made this key: {SIGNING_KEY} is private (gitignored; in CI
        # pass its text as RELAY_SIGNING_KEY), {SIGNING_KEY_PUB} is public (commit it).
        signing = {{ kind = "ed25519", key = "{SIGNING_KEY}" }}

        # The keys whose signatures relay accepts. `relay publish` refuses to sign with any other.
        [[registry.trusted_keys]]
        keyid = "{keyid}"
        public_key = "{SIGNING_KEY_PUB}"
        note = "made by relay init"

        # Where `relay promote VERSION --to ENV` deploys.
        # PLACEHOLDER accounts and roles: use your own (`relay local up` creates these locally).
        [environments.staging]
        account = "222222222222"
        region = "us-east-1"
        role = "arn:aws:iam::222222222222:role/relay-deployer"

        [environments.prod]
        account = "333333333333"
        region = "us-east-1"
        role = "arn:aws:iam::333333333333:role/relay-deployer"
        requires = "staging"  # prod takes only what ran in staging first,
        soak = "30m"          # for at least this long
        """)


GITIGNORE = """\
# Private signing keys (relay init's signing.key, `relay keygen --out X.key`): never commit them.
*.key
dist/
.relay/
__pycache__/
*.pyc
.venv/
# relay's cache when CI keeps it in the checkout (pipelines/: GitLab, CodeBuild)
.cache/
"""

HANDLER = '''\
"""The hello function: greets whoever the event names."""

from __future__ import annotations

import os
from typing import Any

from shared import greeting


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    return {
        "message": greeting(name, os.environ.get("GREETING", "Hello")),
        "request_id": context.aws_request_id,
    }
'''

REQUIREMENTS_IN = """\
# Third-party packages the hello function needs, one per line (e.g. requests).
# `relay lock` resolves them into requirements.txt, with hashes; commit both files.
"""

SHARED_PYPROJECT = """\
# Lets you `pip install -e libs/shared` for tests; relay ships the `shared` package in the layer.
[project]
name = "{app}-shared"
version = "0.0.0"
"""

SHARED_INIT = '''\
"""Code the functions share: shipped in the `shared` layer, imported as `shared`."""


def greeting(name: str, word: str = "Hello") -> str:
    return f"{word}, {name}!"
'''
