"""Lambda as a function's callers meet it: invoke an alias, and where the function logs.

Invoke gets a client of its own from the session: an invocation may run for
up to 15 minutes (the session's clients give up reading after a minute), and
it is never retried, because a retried Invoke runs the function again.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from builder.aws.errors import aws_call, translate
from builder.aws.session import AwsSession
from builder.remote.records import InvokeReply

# Lambda's longest timeout (900 s), and some room for the reply to arrive.
_INVOKE_READ_TIMEOUT = 960


def default_log_group(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


class LambdaRemote:
    """Invoke and logging configuration of functions in one account and region."""

    def __init__(self, session: AwsSession, *, account: str) -> None:
        self.session = session
        self.account = account
        self._client = session.client("lambda")

    def where(self, name: str, qualifier: str) -> str:
        return f"function {name}:{qualifier} (account {self.account}, {self.session.region})"

    def log_group(self, name: str, qualifier: str) -> str:
        """The log group `name:qualifier` writes to: its `LoggingConfig.LogGroup`, else Lambda's default."""
        with aws_call("lambda:GetFunctionConfiguration", self.where(name, qualifier)):
            reply = self._client.get_function_configuration(FunctionName=name, Qualifier=qualifier)
        return (reply.get("LoggingConfig") or {}).get("LogGroup") or default_log_group(name)

    def invoke(self, name: str, *, qualifier: str, payload: bytes) -> InvokeReply:
        """One synchronous invocation of `name:qualifier` with the log tail (`LogType=Tail`), never retried."""
        client = self._client_for_invoke()
        try:
            reply = client.invoke(FunctionName=name, Qualifier=qualifier, InvocationType="RequestResponse",
                                  LogType="Tail", Payload=payload)
            body = reply["Payload"].read()
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, operation="lambda:Invoke", where=self.where(name, qualifier)) from exc
        return InvokeReply(
            status_code=int(reply.get("StatusCode", 0)),
            payload=body,
            function_error=reply.get("FunctionError") or None,
            log_tail=_decoded(reply.get("LogResult")),
            executed_version=reply.get("ExecutedVersion") or None,
            request_id=(reply.get("ResponseMetadata") or {}).get("RequestId", ""),
        )

    def _client_for_invoke(self) -> Any:
        return self.session.client("lambda", read_timeout=_INVOKE_READ_TIMEOUT, attempts=1)


def _decoded(log_result: str | None) -> str:
    if not log_result:
        return ""
    try:
        return base64.b64decode(log_result).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""
