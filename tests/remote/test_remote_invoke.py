"""`relay invoke FN --env ENV`: the environment's alias, invoked in its account, as its callers invoke it.

moto's Lambda without Docker runs no code (see test_remote_logs.py): its Invoke
returns the event, or a result queued for that account through moto's API,
with no `FunctionError` and no log tail. A queued result is what tells here
that relay invoked the right account; what Lambda returns beyond moto (an
error, a log tail, the executed version) is tested on the seam with botocore's
Stubber in test_remote_seams.py.
"""

from __future__ import annotations

import json

from remote_helpers import CallRecorder

from builder.errors import InvokeFailed, NotFound, UnknownName, UsageError
from builder.local.server import call
from builder.remote.factory import run_remote_invoke
from builder.remote.invoke import invoke_alias
from builder.remote.records import InvokeReply
from builder.remote.target import AliasTarget


def queue_result(aws, env: str, result: dict) -> None:
    """The next Invoke in `env`'s account returns `result` (moto's Lambda without Docker)."""
    call(f"{aws.endpoint}/moto-api/static/lambda-simple/response",
         {"results": [json.dumps(result)], "account_id": aws.account(env), "region": aws.region})


def test_invoke_env_returns_what_the_alias_in_the_environment_s_account_returns(shop, relay_cli, tmp_path):
    # Queued in staging's account only: an invocation anywhere else would return the event.
    queue_result(shop.aws, "staging", {"function": "orders", "variant": "a", "cents": 150})
    event = tmp_path / "event.json"
    event.write_text('{"order": 42}', encoding="utf-8")

    run = relay_cli("invoke", "orders", "--env", "staging", "--event", str(event), cwd=shop.root)

    assert run.code == 0, run
    assert json.loads(run.stdout) == {"function": "orders", "variant": "a", "cents": 150}
    assert "Invoked shop-orders:live in staging (account 222222222222, us-east-1): version 1" in run.stderr


def test_invoke_env_sends_the_event_to_the_alias_with_the_log_tail(shop, relay_cli):
    recorder = CallRecorder()

    outcome = run_remote_invoke(shop.project(), "staging", "orders", {"order": 7}, counter=recorder)

    (sent,) = recorder.of("Invoke")
    assert (sent["FunctionName"], sent["Qualifier"], sent["LogType"], sent["InvocationType"]) == (
        "shop-orders", "live", "Tail", "RequestResponse")
    assert json.loads(sent["Payload"]) == {"order": 7}
    assert outcome.ok and outcome.result == {"order": 7}  # moto echoes the event

    piped = relay_cli("invoke", "orders", "--env", "staging", "--event", "-", "--json", cwd=shop.root,
                      stdin='{"from": "stdin"}')
    assert piped.code == 0, piped
    doc = piped.json()
    assert doc["result"] == {"from": "stdin"} and doc["error"] is None and doc["function"] == "orders"
    assert doc["remote"] == {"function": "orders", "function_name": "shop-orders", "env": "staging",
                             "account": "222222222222", "region": "us-east-1", "alias": "live",
                             "versions": {"1": 1.0}, "status_code": 200}


def test_invoke_env_refusals(shop, relay_cli):
    prod = relay_cli("invoke", "orders", "--env", "prod", cwd=shop.root)
    assert prod.code == NotFound.exit_code
    assert "shop-orders has no alias 'live' in prod" in prod.stderr and "hint:" in prod.stderr

    timeout = relay_cli("invoke", "orders", "--env", "staging", "--timeout", "3", cwd=shop.root)
    assert timeout.code == UsageError.exit_code and "--timeout applies to a local invocation" in timeout.stderr

    bad_event = relay_cli("invoke", "orders", "--env", "staging", "--event", "-", cwd=shop.root, stdin="{not json")
    assert bad_event.code == UsageError.exit_code and "not valid JSON" in bad_event.stderr

    typo = relay_cli("invoke", "ordrs", "--env", "staging", cwd=shop.root)
    assert typo.code == UnknownName.exit_code and "no function named 'ordrs'" in typo.stderr


class FailingFunction:
    """The Invoke seam as Lambda answers when the handler raised: FunctionError, the error document, the log tail."""

    def invoke(self, name: str, *, qualifier: str, payload: bytes) -> InvokeReply:
        error = {"errorMessage": "no such order", "errorType": "KeyError", "stackTrace": []}
        return InvokeReply(status_code=200, payload=json.dumps(error).encode(), function_error="Unhandled",
                           log_tail="START RequestId: r1 Version: 3\n[ERROR] KeyError: no such order\nEND RequestId: r1\n",
                           executed_version="3", request_id="r1")


def test_a_function_error_is_the_error_document_and_exit_13():
    target = AliasTarget(function="orders", function_name="shop-orders", env="staging", account="222222222222",
                         region="us-east-1", alias="live", version="3")

    outcome = invoke_alias(target, FailingFunction(), {"order": 1})

    assert not outcome.ok and outcome.result is None
    assert outcome.response == {"errorType": "KeyError", "errorMessage": "no such order", "stackTrace": []}
    assert outcome.version == "3" and "[ERROR] KeyError" in outcome.logs
    failure = outcome.failure()
    assert failure.exit_code == InvokeFailed.exit_code == 13
    assert failure.message == "shop-orders:live in staging: KeyError: no such order"
    assert "relay logs orders --env staging" in failure.hint
    assert outcome.to_json()["error"]["errorType"] == "KeyError"
