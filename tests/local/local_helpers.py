"""Small real projects for the tests in tests/local (imported by its conftest and tests)."""

from __future__ import annotations

import json
from pathlib import Path

from builder.runtime.interpreter import host_architecture

RUNTIME = "python3.12"
# A function built for the other architecture than this machine's.
FOREIGN_ARCH = "arm64" if host_architecture() == "x86_64" else "x86_64"

APP_TOML = f"""\
[app]
name = "tiny"
runtime = "{RUNTIME}"

[layers.base]
packages = ["libs/common"]

[functions.echo]
source = "functions/app"
handler = "app.handlers.echo"
layers = ["base"]
memory = 256
timeout = 5
environment = {{ GREETING = "hi", AWS_LAMBDA_FUNCTION_NAME = "not-allowed-to-win" }}

[functions.boom]
source = "functions/app"
handler = "app.handlers.boom"
layers = ["base"]

[functions.sleepy]
source = "functions/app"
handler = "app.handlers.sleepy"
layers = ["base"]
timeout = 1

[functions.hostdep]
source = "functions/app"
handler = "app.hostdep.handle"
layers = ["base"]

[functions.odd]
source = "functions/app"
handler = "app.handlers.unserialisable"
layers = ["base"]

[functions.spawner]
source = "functions/app"
handler = "app.handlers.spawner"
layers = ["base"]

[functions.sdk]
source = "functions/app"
handler = "app.handlers.sdk"
layers = ["base"]

[functions.graviton]
source = "functions/app"
handler = "app.handlers.echo"
architecture = "{FOREIGN_ARCH}"
layers = ["base"]
"""

HANDLERS = '''\
import os
import subprocess
import sys
import time

from common import TAG


def echo(event, context):
    print("echo got", sorted(event) if isinstance(event, dict) else event)
    print("a warning", file=sys.stderr)
    names = ("GREETING", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
             "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_REGION", "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT",
             "_HANDLER", "TZ", "AWS_LAMBDA_LOG_GROUP_NAME", "RELAY_HOST_ONLY")
    return {
        "event": event,
        "tag": TAG,
        "env": {name: os.environ.get(name) for name in names},
        "cwd": os.getcwd(),
        "sys_path": sys.path[:3],
        "python": "%d.%d" % sys.version_info[:2],
        "context": {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
    }


def boom(event, context):
    print("charging order", event.get("order"))
    raise ValueError("bad order %s" % event.get("order"))


def sleepy(event, context):
    print("going to sleep", flush=True)
    time.sleep(60)
    return "woke up"


def unserialisable(event, context):
    return {"ids": {1, 2}}


def spawner(event, context):
    child = subprocess.Popen(["sleep", "60"])
    return {"pid": child.pid}


def sdk(event, context):
    import boto3
    return {"boto3": boto3.__version__, "from": os.path.dirname(os.path.dirname(boto3.__file__))}
'''


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def make_app(root: Path) -> Path:
    write_tree(root, {
        "relay.toml": APP_TOML,
        "functions/app/app/__init__.py": "",
        "functions/app/app/handlers.py": HANDLERS,
        # attrs is in relay's own environment, never in this bundle.
        "functions/app/app/hostdep.py": "import attrs\n\ndef handle(event, context):\n    return 1\n",
        "libs/common/common/__init__.py": "TAG = 'from-the-layer'\n",
        "events/order.json": json.dumps({"order": 42, "items": ["a", "b"]}),
    })
    return root


def build(root: Path) -> None:
    from builder.bundle.pipeline import BuildOptions, build_project
    from builder.config import load_project

    # The import check would (rightly) refuse `hostdep`; invoke is what is tested here.
    build_project(load_project(root / "relay.toml"), options=BuildOptions(import_check=False, jobs=4))
