"""A project laid out like real Lambda apps (not written for relay), for the selection tests.

`app/` is the code package with handlers in subpackages; around it sit what real
repositories hold: pyproject.toml, a .gitignore, docs, tests, CDK-ish
infrastructure code, a virtualenv, node_modules, a previous dist/, relay's own
.relay/ folder with the local signing key, and files that look like secrets.
Wheels come from `tests/bundle/bundle_helpers.py` (no network).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bundle"))

from bundle_helpers import RUNTIME, write_lock, write_tree

PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"
PEM = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n"
OPENSSH = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}\n-----END OPENSSH PRIVATE KEY-----\n"
# The secrets inside the shipped package, as (path, why it is one).
SECRETS_IN_APP = ("app/.env", "app/id_rsa", "app/deploy.key", "app/common/notes.txt")
# What each function ships from the project: app/** minus .gitignore'd files, excludes and caches.
APP_FILES = {
    "app/__init__.py",
    "app/handlers/__init__.py",
    "app/handlers/orders.py",
    "app/handlers/billing/__init__.py",
    "app/handlers/billing/handler.py",
    "app/common/__init__.py",
    "app/common/money.py",
    "app/common/SCHEMA.md",  # re-included by a negated pattern
}

APP_CONFIG = """\
[app]
name = "realapp"
runtime = "{runtime}"
exclude = ["*.md"]

[functions.orders]
packages = ["app"]
handler = "app.handlers.orders.handle"
requirements = "requirements.in"
exclude = ["!app/common/SCHEMA.md"]
{orders_extra}

[functions.billing]
packages = ["app"]
handler = "app.handlers.billing.handler.handle"
requirements = "requirements.in"
exclude = ["!app/common/SCHEMA.md"]
{billing_extra}
"""


def real_app_files() -> dict[str, str]:
    return {
        "pyproject.toml": textwrap.dedent("""\
            [project]
            name = "realapp"
            version = "0.3.1"
            requires-python = ">=3.12"
            dependencies = ["greeting"]
            """),
        "requirements.in": "greeting\n",
        ".gitignore": "*.log\nlocal_settings.py\ndist/\n.venv/\nnode_modules/\ncdk.out/\n.relay/\n",
        "README.md": "# realapp\n",
        "app/__init__.py": "",
        "app/README.md": "how the app is laid out\n",
        "app/handlers/__init__.py": "",
        "app/handlers/orders.py": textwrap.dedent("""\
            import greeting
            from app.common.money import cents

            def handle(event, context):
                return {"msg": greeting.hello("orders"), "cents": cents(event.get("amount", 1))}
            """),
        "app/handlers/billing/__init__.py": "",
        "app/handlers/billing/handler.py": textwrap.dedent("""\
            from app.common.money import cents

            def handle(event, context):
                return {"due": cents(event.get("amount", 2))}
            """),
        "app/common/__init__.py": "",
        "app/common/money.py": "def cents(amount):\n    return round(amount * 100)\n",
        "app/common/SCHEMA.md": "the order schema, read at run time\n",
        "app/local_settings.py": "DEBUG = True\n",  # .gitignore'd
        "app/server.log": "GET /orders 200\n",  # .gitignore'd
        "app/__pycache__/money.cpython-312.pyc": "not really bytecode",
        "app/.env": "DATABASE_URL=postgres://admin:hunter2@db/orders\n",
        "app/id_rsa": OPENSSH,
        "app/deploy.key": PEM,
        "app/common/notes.txt": "staging key, do not share:\n" + PEM,
        ".env": "AWS_SECRET_ACCESS_KEY=abc\n",
        "relay.key": PEM,
        ".relay/local-signing.key": PEM,
        "docs/index.md": "# docs\n",
        "tests/test_orders.py": "def test_orders():\n    assert True\n",
        "infrastructure/app.ts": "import * as cdk from 'aws-cdk-lib';\n",
        "infrastructure/stack.py": "from aws_cdk import Stack\n",
        ".venv/pyvenv.cfg": "home = /usr/bin\n",
        ".venv/lib/python3.12/site-packages/boto3/__init__.py": "",
        "node_modules/aws-cdk-lib/index.js": "module.exports = {}\n",
        "dist/orders.zip": "a previous build",
        "dist/index.json": "{}\n",
    }


def make_real_app(root: Path, wheelhouse: dict[str, Path], *, config: str | None = None, **extra: str) -> Path:
    write_tree(root, real_app_files())
    text = config if config is not None else APP_CONFIG
    fields = {"runtime": RUNTIME, "orders_extra": "", "billing_extra": "", **extra}
    (root / "relay.toml").write_text(text.format(**fields), encoding="utf-8")
    write_lock(root / "requirements.in", [("greeting", "1.0", wheelhouse["greeting"])])
    return root


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, env=env, check=True)
    return done.stdout


def commit_all(root: Path) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "state")


def remove_secrets(root: Path) -> None:
    for rel in SECRETS_IN_APP:
        (root / rel).unlink()


def dist_state(root: Path) -> dict[str, str]:
    """Every file under dist/ and its sha256: equal before and after means dist/ was not touched."""
    dist = root / "dist"
    return {p.relative_to(dist).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(dist.rglob("*")) if p.is_file()}


def zip_names(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as archive:
        return set(archive.namelist())


# The workaround layout: `source = "."` with excludes, the secrets it ships allowed by name.
SOURCE_DOT = """\
[app]
name = "realapp"
runtime = "{runtime}"

[functions.orders]
source = "."
handler = "app.handlers.orders.handle"
requirements = "requirements.in"
exclude = ["docs/", "tests/", "infrastructure/", "*.md", "pyproject.toml", "/.gitignore", "/relay.toml"]
allow_secrets = {allow}
"""


def source_dot_config(allowed: list[str]) -> str:
    """`SOURCE_DOT` allowing `allowed` (a config for `make_real_app`)."""
    return SOURCE_DOT.replace("{allow}", json.dumps(allowed))
