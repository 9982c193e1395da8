"""Every call relay logs and relay invoke --env make is allowed by the deployer policy `relay iam-policy` writes."""

from __future__ import annotations

import fnmatch

from remote_helpers import CallRecorder, put_lines

from builder.iam_policy import iam_policies
from builder.remote.factory import open_logs, run_remote_invoke
from builder.remote.logs import parse_since

NO_POLICY = {"sts:GetCallerIdentity", "sts:AssumeRole"}


def resource_of(service: str, operation: str, params: dict) -> tuple[str, str]:
    """(IAM action, resource ARN) of one call made in staging's account (us-east-1)."""
    if service in ("logs", "cloudwatch-logs"):  # botocore names the service cloudwatch-logs in its events
        return f"logs:{operation}", f"arn:aws:logs:us-east-1:222222222222:log-group:{params['logGroupName']}:*"
    assert service == "lambda", (service, operation)
    action = "lambda:InvokeFunction" if operation == "Invoke" else f"lambda:{operation}"
    qualifier = params.get("Qualifier") or params.get("Name")
    return action, f"arn:aws:lambda:us-east-1:222222222222:function:{params['FunctionName']}:{qualifier}"


def allowed(document: dict, action: str, resource: str) -> bool:
    return any(statement["Effect"] == "Allow" and action in statement["Action"]
               and any(fnmatch.fnmatchcase(resource, pattern) for pattern in statement["Resource"])
               and "Condition" not in statement
               for statement in document["Statement"])


def test_logs_and_invoke_need_nothing_the_deployer_policy_does_not_allow(shop):
    put_lines(shop, "staging", "shop-orders", "1", ["a line"])
    recorder = CallRecorder()
    project = shop.project()

    remote = open_logs(project, "staging", "orders", counter=recorder)
    assert [e.message for e in remote.read(parse_since("10m", remote.clock.now())).events] == ["a line"]
    run_remote_invoke(project, "staging", "orders", {}, counter=recorder)

    (staging, *_) = iam_policies(project, "deployer", env="staging")
    calls = {(s, o): p for s, o, p in recorder.calls if f"{s}:{o}" not in NO_POLICY}
    assert {op for _, op in calls} == {"GetAlias", "GetFunctionConfiguration", "FilterLogEvents", "Invoke"}
    refused = [resource_of(s, o, p) for (s, o), p in calls.items()
               if not allowed(staging.document, *resource_of(s, o, p))]
    assert refused == []
    # Only the alias is invoked, only the functions' own log groups are read.
    assert not allowed(staging.document, "lambda:InvokeFunction", "arn:aws:lambda:us-east-1:222222222222:function:shop-orders")
    assert not allowed(staging.document, "logs:FilterLogEvents",
                       "arn:aws:logs:us-east-1:222222222222:log-group:/aws/lambda/other-app:*")
