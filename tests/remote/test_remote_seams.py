"""The AWS seams of relay logs / invoke --env, on what real Lambda returns and moto does not (botocore's Stubber).

moto 5.2 sets no `FunctionError`, `LogResult` or `ExecutedVersion` on Invoke
and keeps no `LoggingConfig`; these replies are shaped as the Lambda API
reference documents them.
"""

from __future__ import annotations

import base64
import io
import json

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from builder.aws.lambda_remote import LambdaRemote
from builder.aws.logs import CloudWatchLogs
from builder.aws.session import AwsTarget, open_session
from builder.errors import NotFound

ACCOUNT = "222222222222"


@pytest.fixture
def session(aws):
    return open_session(AwsTarget(region="us-east-1"))


def test_invoke_reads_the_function_error_log_tail_and_executed_version(session):
    remote = LambdaRemote(session, account=ACCOUNT)
    error = json.dumps({"errorMessage": "boom", "errorType": "ValueError"}).encode()
    tail = "START RequestId: r1 Version: 4\nboom\nEND RequestId: r1\nREPORT RequestId: r1\tDuration: 3.00 ms\n"
    with Stubber(remote._client_for_invoke()) as stub:
        stub.add_response("invoke", {
            "StatusCode": 200, "FunctionError": "Unhandled", "ExecutedVersion": "4",
            "LogResult": base64.b64encode(tail.encode()).decode(),
            "Payload": StreamingBody(io.BytesIO(error), len(error)),
        }, expected_params={"FunctionName": "shop-orders", "Qualifier": "live", "InvocationType": "RequestResponse",
                            "LogType": "Tail", "Payload": b"{}"})

        reply = remote.invoke("shop-orders", qualifier="live", payload=b"{}")

    assert (reply.function_error, reply.executed_version, reply.log_tail) == ("Unhandled", "4", tail)
    assert json.loads(reply.payload) == {"errorMessage": "boom", "errorType": "ValueError"}


def test_invoke_is_never_retried(session):
    remote = LambdaRemote(session, account=ACCOUNT)
    client = remote._client_for_invoke()

    assert client.meta.config.retries["total_max_attempts"] == 1  # a retried Invoke runs the function again
    assert client.meta.config.read_timeout >= 900  # Lambda's longest timeout


def test_the_log_group_is_the_configured_one_else_lambda_s_default(session):
    remote = LambdaRemote(session, account=ACCOUNT)
    with Stubber(session.client("lambda")) as stub:
        stub.add_response("get_function_configuration", {"FunctionName": "shop-orders", "LoggingConfig": {
            "LogFormat": "JSON", "LogGroup": "/shop/orders"}}, {"FunctionName": "shop-orders", "Qualifier": "live"})
        stub.add_response("get_function_configuration", {"FunctionName": "shop-orders"},
                          {"FunctionName": "shop-orders", "Qualifier": "live"})

        assert remote.log_group("shop-orders", "live") == "/shop/orders"
        assert remote.log_group("shop-orders", "live") == "/aws/lambda/shop-orders"


def test_filter_events_reads_every_page_and_a_missing_group_is_not_found(session):
    logs = CloudWatchLogs(session, account=ACCOUNT)
    with Stubber(session.client("logs")) as stub:
        stub.add_response("filter_log_events", {"events": [
            {"logStreamName": "2026/11/30/[3]a", "timestamp": 1, "message": "one\n", "eventId": "e1"}],
            "nextToken": "t1"})
        stub.add_response("filter_log_events", {"events": [
            {"logStreamName": "2026/11/30/[4]b", "timestamp": 2, "message": "two", "eventId": "e2"}]},
            {"logGroupName": "/aws/lambda/shop-orders", "startTime": 0, "limit": 1000, "nextToken": "t1"})
        stub.add_client_error("filter_log_events", "ResourceNotFoundException", "The specified log group does not exist.")

        events = list(logs.filter_events("/aws/lambda/shop-orders", start_ms=0))
        with pytest.raises(NotFound, match="log group /aws/lambda/gone"):
            list(logs.filter_events("/aws/lambda/gone", start_ms=0))

    assert [(e.version, e.message, e.event_id) for e in events] == [("3", "one\n", "e1"), ("4", "two", "e2")]
