"""Writing log lines where Lambda writes them, and watching which AWS calls relay makes."""

from __future__ import annotations

import threading
import time
from typing import Any

from builder.aws.session import RequestCounter


def now_ms() -> int:
    return int(time.time() * 1000)


def put_lines(shop, env: str, function_name: str, version: str, lines: list[str], *, at_ms: int | None = None,
              instance: str = "0123456789abcdef") -> str:
    """`lines` in a stream of `version`, named as Lambda names it (`<date>/[<version>]<id>`); the stream's name."""
    logs = shop.client(env, "logs")
    group = f"/aws/lambda/{function_name}"
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        logs.create_log_group(logGroupName=group)
    stream = time.strftime("%Y/%m/%d", time.gmtime()) + f"/[{version}]{instance}"
    if not logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)["logStreams"]:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    start = at_ms if at_ms is not None else now_ms()
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": start + i, "message": line} for i, line in enumerate(lines)])
    return stream


class CallRecorder(RequestCounter):
    """A RequestCounter that keeps each call's service, operation and parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, dict]] = []
        self._calls_lock = threading.Lock()

    def register(self, client: Any) -> None:
        super().register(client)

        def keep(event_name: str = "", params: dict | None = None, **_: Any) -> None:
            _, service, operation = event_name.split(".", 2)
            with self._calls_lock:
                self.calls.append((service, operation, dict(params or {})))

        client.meta.events.register("before-parameter-build", keep)

    def of(self, operation: str) -> list[dict]:
        return [params for _, op, params in self.calls if op == operation]


def handler_zip(name: str, variant: str) -> bytes:
    import io
    import zipfile

    from promote_helpers import handler_source

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "")
        archive.writestr(f"{name}/handler.py", handler_source(name, variant))
    return buffer.getvalue()


def deploy(shop, env: str, name: str, *, variant: str = "a", alias: str = "live") -> str:
    """Publish a new version of shop-<name> in `env` (creating the function the first time) and point `alias` at it."""
    lam = shop.lam(env)
    function_name = f"shop-{name}"
    code = handler_zip(name, variant)
    existing = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    if function_name in existing:
        lam.update_function_code(FunctionName=function_name, ZipFile=code)
    else:
        account = shop.aws.account(env)
        lam.create_function(FunctionName=function_name, Runtime="python3.12", Handler=f"{name}.handler.handle",
                            Role=f"arn:aws:iam::{account}:role/relay-exec", Code={"ZipFile": code})
    version = lam.publish_version(FunctionName=function_name)["Version"]
    try:
        lam.update_alias(FunctionName=function_name, Name=alias, FunctionVersion=version)
    except lam.exceptions.ResourceNotFoundException:
        lam.create_alias(FunctionName=function_name, Name=alias, FunctionVersion=version)
    return version
