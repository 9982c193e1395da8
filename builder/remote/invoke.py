"""`relay invoke --env`: invoke an environment's alias in its account, as its callers do.

The result has the shape of a local invocation (`builder.runtime.invocation`):
the response, the log (Lambda's tail of it, `LogType=Tail`), an error when the
function failed (`FunctionError`), which the command turns into exit 13.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import attrs

from builder.errors import InvokeFailed
from builder.remote.records import InvokeReply
from builder.remote.target import AliasTarget


class Invoker(Protocol):
    def invoke(self, name: str, *, qualifier: str, payload: bytes) -> InvokeReply: ...


@attrs.frozen
class RemoteInvocation:
    """The outcome of invoking the alias: which version ran, its response, its log tail."""

    target: AliasTarget
    version: str  # the version that ran ("" when the endpoint does not say)
    request_id: str
    status_code: int
    result: Any
    error: dict | None
    logs: str

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def response(self) -> Any:
        """What the Invoke API returned: the result, or the error document."""
        return self.result if self.ok else self.error

    def to_json(self) -> dict:
        return {
            "function": self.target.function,
            "version": self.version,
            "request_id": self.request_id,
            "result": self.result,
            "error": self.error,
            "logs": self.logs,
            "remote": {**self.target.to_json(), "status_code": self.status_code},
        }

    def failure(self) -> InvokeFailed:
        assert self.error is not None
        where = f"{self.target.function_name}:{self.target.alias} in {self.target.env}"
        return InvokeFailed(f"{where}: {self.error.get('errorType', 'Error')}: {self.error.get('errorMessage', '')}",
                            hint="The error above is what the function returned; `relay logs "
                                 f"{self.target.function} --env {self.target.env}` shows its log.")

    def raise_for_error(self) -> None:
        if not self.ok:
            raise self.failure()


def invoke_alias(target: AliasTarget, invoker: Invoker, event: Any) -> RemoteInvocation:
    """Invoke `target`'s alias with `event` (a JSON value) and read the reply."""
    reply = invoker.invoke(target.function_name, qualifier=target.alias,
                           payload=json.dumps(event, ensure_ascii=False).encode("utf-8"))
    body = read_payload(reply.payload)
    error = None
    if reply.function_error:
        error = body if isinstance(body, dict) else {"errorMessage": body}
        error = {"errorType": reply.function_error, **error}
    return RemoteInvocation(target=target, version=reply.executed_version or "", request_id=reply.request_id,
                            status_code=reply.status_code, result=None if error else body, error=error,
                            logs=reply.log_tail)


def read_payload(payload: bytes) -> Any:
    """The response payload as JSON, or as text when it is not JSON."""
    text = payload.decode("utf-8", errors="replace")
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
