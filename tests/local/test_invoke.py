"""`relay invoke`: the built bundle runs as Lambda would run it, in a child process."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import uuid
import zipfile
from pathlib import Path

import pytest
from local_helpers import RUNTIME, make_app

from builder.bundle.pythons import find_python
from builder.config import load_project
from builder.errors import InvokeFailed, NotFound, UsageError, VerificationFailed
from builder.runtime.event import read_event
from builder.runtime.invocation import invoke_function

TARGET_INSTALLED = find_python(RUNTIME.removeprefix("python")) is not None


# -- results and events ---------------------------------------------------------------------


def test_returns_the_handlers_result_for_an_event_file(app: Path, relay) -> None:
    run = relay("invoke", "echo", "--event", str(app / "events/order.json"), cwd=app)

    assert run.code == 0, run
    result = run.json()  # stdout holds the result alone
    assert result["event"] == {"order": 42, "items": ["a", "b"]}
    assert result["tag"] == "from-the-layer"
    # The handler's logs go to stderr, framed as CloudWatch shows them.
    assert "echo got ['items', 'order']" in run.stderr
    assert "a warning" in run.stderr
    for line in ("START RequestId: ", "END RequestId: ", "REPORT RequestId: "):
        assert line in run.stderr
    assert "Max Memory Used: " in run.stderr and "Duration: " in run.stderr


def test_event_from_stdin_with_the_installed_cli(app: Path, relay_script: Path) -> None:
    done = subprocess.run(
        [str(relay_script), "-C", str(app), "invoke", "echo", "--event", "-"],
        input='{"from": "stdin", "n": [1, 2]}', capture_output=True, text=True, timeout=120,
        env={**os.environ, "RELAY_CACHE_DIR": str(app.parent / "cache")},
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["event"] == {"from": "stdin", "n": [1, 2]}


def test_event_from_stdin_in_process(app: Path, relay) -> None:
    run = relay("invoke", "echo", "--event", "-", cwd=app, stdin='["a", "list", "event"]')

    assert run.code == 0, run
    assert run.json()["event"] == ["a", "list", "event"]


def test_default_event_is_an_empty_object(app: Path, relay) -> None:
    run = relay("invoke", "echo", cwd=app)

    assert run.code == 0, run
    assert run.json()["event"] == {}


@pytest.mark.parametrize("text, message", [("{not json", "not valid JSON"), ("  ", "is empty")])
def test_a_bad_event_is_a_usage_error(app: Path, relay, text: str, message: str) -> None:
    run = relay("invoke", "echo", "--event", "-", cwd=app, stdin=text)

    assert run.code == UsageError.exit_code, run
    assert message in run.stderr


def test_a_missing_event_file_is_a_usage_error(app: Path, relay, tmp_path: Path) -> None:
    run = relay("invoke", "echo", "--event", str(tmp_path / "nope.json"), cwd=app)

    assert run.code == UsageError.exit_code, run
    assert "event file not found" in run.stderr


def test_read_event_parses_any_json_value() -> None:
    assert read_event(None, io.StringIO("ignored")) == {}
    assert read_event("-", io.StringIO('"just a string"')) == "just a string"


# -- the Lambda environment -----------------------------------------------------------------


def test_configured_and_lambda_variables_are_set_and_the_host_is_not(app: Path, monkeypatch) -> None:
    monkeypatch.setenv("RELAY_HOST_ONLY", "secret-of-the-host")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")

    outcome = invoke_function(load_project(app / "relay.toml"), "echo")

    assert outcome.ok, outcome.error
    env = outcome.result["env"]
    assert env["GREETING"] == "hi"
    # Lambda's own variables win over a configured one of the same name.
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "echo"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_REGION"] == "eu-west-1"
    assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{RUNTIME}"
    assert env["_HANDLER"] == "app.handlers.echo"
    assert env["TZ"] == ":UTC"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/echo"
    assert env["RELAY_HOST_ONLY"] is None
    # cwd is the task root, which comes first on sys.path, then the layers.
    assert env["LAMBDA_TASK_ROOT"] == outcome.result["cwd"]
    task = outcome.result["cwd"]
    assert outcome.result["sys_path"][0] == task
    assert outcome.result["sys_path"][2] == str(Path(task).parent / "opt" / "python")


def test_the_context_looks_like_lambdas(app: Path) -> None:
    outcome = invoke_function(load_project(app / "relay.toml"), "echo")

    context = outcome.result["context"]
    assert context["aws_request_id"] == outcome.request_id
    uuid.UUID(outcome.request_id)
    assert context["function_name"] == "echo"
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"].startswith("arn:aws:lambda:")
    assert context["invoked_function_arn"].endswith(":function:echo")
    assert context["memory_limit_in_mb"] == "256"
    assert context["log_group_name"] == "/aws/lambda/echo"
    assert "[$LATEST]" in context["log_stream_name"]
    assert 0 < context["remaining_ms"] <= 5000


@pytest.mark.skipif(not TARGET_INSTALLED, reason=f"{RUNTIME} is not installed here")
def test_runs_under_the_target_python(app: Path) -> None:
    outcome = invoke_function(load_project(app / "relay.toml"), "echo")

    assert outcome.result["python"] == RUNTIME.removeprefix("python")
    assert outcome.notes == ()



def test_host_site_packages_are_invisible(app: Path) -> None:
    # attrs is installed where relay runs, but not in the bundle: Lambda would not have it either.
    outcome = invoke_function(load_project(app / "relay.toml"), "hostdep")

    assert outcome.error["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'attrs'" in outcome.error["errorMessage"]


def test_the_sdk_lambda_ships_is_importable(app: Path) -> None:
    outcome = invoke_function(load_project(app / "relay.toml"), "sdk")

    assert outcome.ok, outcome.error
    assert outcome.result["from"].endswith("runtime")  # the /var/runtime stand-in, not the bundle


def test_a_foreign_architecture_is_noted(app: Path, relay) -> None:
    run = relay("invoke", "graviton", "--json", cwd=app)

    assert run.code == 0, run
    assert any("native extensions" in note for note in run.json()["notes"])


# -- failures -------------------------------------------------------------------------------


def test_a_raising_handler_gives_lambdas_error_shape_and_exit_13(app: Path, relay) -> None:
    run = relay("invoke", "boom", "--event", str(app / "events/order.json"), cwd=app)

    assert run.code == InvokeFailed.exit_code == 13, run
    error = run.json()
    assert set(error) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "bad order 42"
    uuid.UUID(error["requestId"])
    assert len(error["stackTrace"]) == 1  # the handler's frame only, not the runtime's
    assert error["stackTrace"][0].startswith('  File "/var/task/app/handlers.py"')
    assert "in boom" in error["stackTrace"][0]
    assert "charging order 42" in run.stderr
    assert "[ERROR] ValueError: bad order 42" in run.stderr
    assert "error: boom: ValueError: bad order 42" in run.stderr


def test_a_sleeping_handler_is_killed_at_the_timeout(app: Path, relay) -> None:
    run = relay("invoke", "sleepy", cwd=app)

    assert run.code == 13, run
    error = run.json()
    assert error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert "going to sleep" in run.stderr
    assert "Task timed out after 1.00 seconds" in run.stderr
    assert "Status: timeout" in run.stderr


def test_timeout_option_overrides_the_configured_one(app: Path, relay) -> None:
    run = relay("invoke", "sleepy", "--timeout", "0.5", "--json", cwd=app)

    assert run.code == 13, run
    doc = run.json()
    assert doc["timed_out"] is True
    assert doc["error"]["errorMessage"].endswith("Task timed out after 0.50 seconds")
    assert doc["result"] is None
    assert doc["logs"] == "going to sleep\n"


def test_a_result_lambda_cannot_marshal_is_an_error(app: Path) -> None:
    outcome = invoke_function(load_project(app / "relay.toml"), "odd")

    assert outcome.error["errorType"] == "Runtime.MarshalError"
    assert "not JSON serializable" in outcome.error["errorMessage"]
    with pytest.raises(InvokeFailed):
        outcome.raise_for_error()


def test_background_processes_do_not_outlive_the_invocation(app: Path) -> None:
    outcome = invoke_function(load_project(app / "relay.toml"), "spawner")

    assert outcome.ok, outcome.error
    assert not _alive(outcome.result["pid"])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie waiting for init to reap it is gone too


# -- the --json document --------------------------------------------------------------------


def test_json_document_keeps_result_and_logs_apart(app: Path, relay) -> None:
    run = relay("invoke", "echo", "--event", str(app / "events/order.json"), "--json", cwd=app)

    assert run.code == 0, run
    doc = run.json()
    assert {"result", "error", "logs", "duration_ms", "max_memory_mb", "request_id"} <= set(doc)
    assert doc["error"] is None
    assert doc["result"]["event"]["order"] == 42
    assert "echo got" in doc["logs"] and "a warning" in doc["logs"]
    assert "echo got" not in json.dumps(doc["result"])
    assert doc["max_memory_mb"] > 0
    assert doc["duration_ms"] >= 0
    assert doc["result"]["context"]["aws_request_id"] == doc["request_id"]


def test_json_error_is_one_document(app: Path, relay) -> None:
    run = relay("invoke", "boom", "--json", cwd=app)

    assert run.code == 13, run
    doc = run.json()  # one document: json.loads would fail on two
    assert doc["error"]["errorType"] == "ValueError"


# -- what is run ----------------------------------------------------------------------------


def test_without_a_build_it_says_to_build_first(tmp_path: Path, relay, cache_dir: Path) -> None:
    root = make_app(tmp_path / "unbuilt")

    run = relay("invoke", "echo", cwd=root)

    assert run.code == NotFound.exit_code, run
    assert "no build in dist/" in run.stderr
    assert "relay build" in run.stderr
    assert not (root / "dist").exists()  # it did not build implicitly


def test_an_unknown_function_names_the_known_ones(app: Path, relay) -> None:
    run = relay("invoke", "nope", cwd=app)

    assert run.code == 12, run  # unknown names: exit 12 in every command
    assert "echo" in run.stderr


def test_a_layer_from_another_build_is_refused(app: Path, tmp_path: Path, relay) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(app, copy)
    layer = next((copy / "dist").glob("layer-base-*.zip"))
    with zipfile.ZipFile(layer, "a") as archive:
        archive.writestr("python/extra.py", "X = 1\n")

    run = relay("invoke", "echo", cwd=copy)

    assert run.code == VerificationFailed.exit_code, run
    assert layer.name in run.stderr


def test_a_missing_layer_zip_is_not_found(app: Path, tmp_path: Path, relay) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(app, copy)
    for layer in (copy / "dist").glob("layer-base-*.zip"):
        layer.unlink()

    run = relay("invoke", "echo", cwd=copy)

    assert run.code == NotFound.exit_code, run
    assert "layer base" in run.stderr


def test_the_report_line_carries_init_duration_and_timeout_status(app: Path, relay) -> None:
    run = relay("invoke", "sleepy", "--timeout", "0.5", cwd=app)

    report = next(line for line in run.stderr.splitlines() if line.startswith("REPORT RequestId: "))
    fields = report.split("\t")
    assert fields[1].startswith("Duration: ") and fields[2].startswith("Billed Duration: ")
    assert any(field.startswith("Init Duration: ") for field in fields)
    assert fields[-1] == "Status: timeout"
