"""The code that runs inside the child interpreter, tested in-process (it is a plain module)."""

from __future__ import annotations

import ast
import decimal
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.runtime import bootstrap
from builder.runtime.child import BOOTSTRAP, Mode

SPEC_SHOWN = {"/tmp/x/task": "/var/task", "/tmp/x/opt": "/opt", "/tmp/x/runtime": "/var/runtime"}


@pytest.fixture
def task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A task root on sys.path; the modules the test imports from it are forgotten afterwards."""
    root = tmp_path / "task"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))  # check() adds its watch there
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def spec(handler: str, **extra) -> dict:
    return {"handler": handler, "shown_as": SPEC_SHOWN, "aws_sdk": ["fakesdk"],
            "context": {"request_id": "req-1"}, **extra}


# -- the child's isolation ------------------------------------------------------------------


def test_the_bootstrap_imports_the_standard_library_only() -> None:
    tree = ast.parse(BOOTSTRAP.read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}

    assert imported - {"__future__"} <= sys.stdlib_module_names, imported - sys.stdlib_module_names
    assert "builder" not in imported


def test_the_modes_the_parent_names_are_the_bootstraps() -> None:
    assert {Mode.CHECK.value, Mode.INVOKE.value} == {bootstrap.CHECK, bootstrap.INVOKE}


# -- mode "check" ---------------------------------------------------------------------------


def test_a_missing_module_is_named_whatever_was_imported_before_it(task: Path) -> None:
    write(task, {"app/__init__.py": "", "app/handler.py": "import json\nimport not_in_the_lock\n\ndef handle(e, c):\n    pass\n"})

    verdict = bootstrap.check(spec("app.handler.handle"))

    assert verdict["status"] == "missing"
    assert verdict["module"] == "not_in_the_lock"


def test_a_handler_that_imports_cleanly_is_ok(task: Path) -> None:
    write(task, {"good.py": "import json\n\ndef handle(e, c):\n    return json.dumps(e)\n"})

    assert bootstrap.check(spec("good.handle")) == {"status": "ok"}


def test_a_missing_or_uncallable_handler_function_is_reported(task: Path) -> None:
    write(task, {"mod.py": "handle = 3\n"})

    assert bootstrap.check(spec("mod.absent"))["status"] == "no-handler"
    assert bootstrap.check(spec("mod.handle")) == {"status": "no-handler", "error": "mod has no function handle"}


def test_an_error_while_importing_is_reported_with_lambdas_paths(task: Path) -> None:
    write(task, {"broken.py": "raise RuntimeError('no config in /tmp/x/task/conf.ini')\n"})

    verdict = bootstrap.check(spec("broken.handle"))

    assert verdict == {"status": "error", "error": "RuntimeError: no config in /var/task/conf.ini"}


def test_an_error_raised_by_the_aws_sdk_is_told_apart(task: Path) -> None:
    # Stands in for botocore's NoCredentialsError: a handler calling AWS while it is imported.
    write(task, {"fakesdk/__init__.py": "class NoCredentialsError(Exception):\n    pass\n",
                 "calls.py": "import fakesdk\nraise fakesdk.NoCredentialsError('Unable to locate credentials')\n"})

    verdict = bootstrap.check(spec("calls.handle"))

    assert verdict["status"] == "aws-call"
    assert "NoCredentialsError: Unable to locate credentials" in verdict["note"]


@pytest.mark.skipif(os.uname().machine == "aarch64", reason="this host would load an aarch64 extension")
def test_a_native_extension_for_another_platform_is_foreign(task: Path) -> None:
    write(task, {"fast/__init__.py": "from fast._speedups import go\n",
                 "fast/_speedups.cpython-312-aarch64-linux-gnu.so": "not really ELF",
                 "uses.py": "import fast\n\ndef handle(e, c):\n    pass\n"})

    verdict = bootstrap.check(spec("uses.handle"))

    assert verdict["status"] == "foreign"
    assert "fast._speedups" in verdict["note"]


def test_a_malformed_handler_name_is_an_error() -> None:
    verdict = bootstrap.check(spec("nodot"))

    assert verdict["status"] == "error"
    assert "Bad handler 'nodot'" in verdict["error"]


# -- mode "invoke" --------------------------------------------------------------------------


def test_load_handler_names_failures_as_lambda_does(task: Path) -> None:
    write(task, {"bad_syntax.py": "def (:\n", "imports.py": "import nowhere_to_be_found\n", "empty.py": ""})

    with pytest.raises(bootstrap.Fault) as syntax:
        bootstrap.load_handler("bad_syntax.handle")
    with pytest.raises(bootstrap.Fault) as missing:
        bootstrap.load_handler("imports.handle")
    with pytest.raises(bootstrap.Fault) as absent:
        bootstrap.load_handler("empty.handle")

    assert syntax.value.kind == "Runtime.UserCodeSyntaxError"
    assert missing.value.kind == "Runtime.ImportModuleError"
    assert "No module named 'nowhere_to_be_found'" in missing.value.message
    assert absent.value.kind == "Runtime.HandlerNotFound"


def test_a_slash_separated_handler_is_accepted() -> None:
    assert bootstrap.split_handler("pkg/module.handle") == ("pkg.module", "handle")


def test_an_error_document_has_lambdas_shape_without_runtime_frames() -> None:
    def handler() -> None:
        raise ValueError("bad order 42")

    try:
        handler()
    except ValueError:
        error = bootstrap.error_from(sys.exc_info(), spec("x.y"))

    assert set(error) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert (error["errorType"], error["errorMessage"], error["requestId"]) == ("ValueError", "bad order 42", "req-1")
    assert "in handler" in error["stackTrace"][-1]


def test_decimals_marshal_as_numbers_and_sets_do_not() -> None:
    assert json.dumps({"n": decimal.Decimal("1.5")}, default=bootstrap.decimal_serializer) == '{"n": 1.5}'
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        json.dumps({1, 2}, default=bootstrap.decimal_serializer)


def test_the_context_counts_down_to_the_deadline() -> None:
    fields = {"request_id": "r", "function_name": "f", "function_version": "$LATEST", "invoked_function_arn": "arn",
              "memory_limit_in_mb": "128", "log_group_name": "/aws/lambda/f", "log_stream_name": "s"}
    context = bootstrap.LambdaContext(fields, time.monotonic() + 2.0)

    assert 1000 < context.get_remaining_time_in_millis() <= 2000
    assert context.memory_limit_in_mb == "128"
    assert "aws_request_id=r" in repr(context)


def test_an_error_of_another_provided_package_still_fails(task: Path) -> None:
    # dateutil ships with the runtime too, but a parse error at import is the handler's own bug.
    write(task, {"otherlib/__init__.py": "class ParserError(ValueError):\n    pass\n",
                 "parses.py": "import otherlib\nraise otherlib.ParserError('Unknown string format')\n"})

    verdict = bootstrap.check(spec("parses.handle"))

    assert verdict == {"status": "error", "error": "ParserError: Unknown string format"}
