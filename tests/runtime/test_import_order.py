"""End to end: the build's import check and `relay invoke` see the same runtime (issue 8, item 2).

A handler that imports boto3 (which Lambda's runtime provides) and then a
package its lock lacks used to pass the import check, because the check
allowed boto3 by name and stopped at the first missing module. Both now mount
the bundle the same way with the SDK linked in, so both name the package that
is really missing.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from builder.bundle.pythons import find_python
from builder.errors import BuildFailed, InvokeFailed
from builder.runtime.interpreter import host_architecture

RUNTIME = "python3.12"

pytestmark = [
    pytest.mark.skipif(find_python(RUNTIME.removeprefix("python")) is None, reason=f"{RUNTIME} is not installed here"),
    pytest.mark.skipif(host_architecture() != "x86_64", reason="the functions here are built for x86_64"),
]

BOTO3_THEN_MISSING = "import boto3\nimport not_in_the_lock\n\n\ndef handle(event, context):\n    return 'unreachable'\n"


def make_project(root: Path, handler_code: str) -> Path:
    files = {
        "relay.toml": textwrap.dedent(f"""\
            [app]
            name = "order"
            runtime = "{RUNTIME}"

            [layers.base]
            packages = ["libs/common"]

            [functions.orders]
            source = "functions/orders"
            handler = "orders.app.handle"
            layers = ["base"]
            """),
        "functions/orders/orders/__init__.py": "",
        "functions/orders/orders/app.py": handler_code,
        "libs/common/common/__init__.py": "TAG = 'from-the-layer'\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_build_fails_naming_the_missing_package_after_an_sdk_import(tmp_path: Path, relay) -> None:
    root = make_project(tmp_path / "app", BOTO3_THEN_MISSING)

    run = relay("build", cwd=root)

    assert run.code == BuildFailed.exit_code == 4, run
    assert "no module named 'not_in_the_lock'" in run.stderr
    assert "boto3" not in run.stderr.split("error:")[-1]
    assert not (root / "dist/orders.zip").exists()


def test_invoke_reports_the_same_missing_package(tmp_path: Path, relay) -> None:
    root = make_project(tmp_path / "app", BOTO3_THEN_MISSING)
    assert relay("build", "--no-import-check", cwd=root).code == 0

    run = relay("invoke", "orders", "--json", cwd=root)

    assert run.code == InvokeFailed.exit_code, run
    error = run.json()["error"]
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'not_in_the_lock'" in error["errorMessage"]


def test_the_sdk_the_runtime_provides_imports_in_the_check_and_in_invoke(tmp_path: Path, relay) -> None:
    code = textwrap.dedent("""\
        import importlib.metadata
        import sys

        import boto3
        import dateutil.parser
        from common import TAG

        CLIENT = boto3.client("s3")  # creating a client calls nothing


        def handle(event, context):
            return {"boto3": importlib.metadata.version("boto3"), "from": boto3.__file__, "tag": TAG,
                    "when": dateutil.parser.isoparse("2026-01-02").year, "path": sys.path}
        """)
    root = make_project(tmp_path / "app", code)

    built = relay("build", "--json", cwd=root)
    invoked = relay("invoke", "orders", "--json", cwd=root)

    assert built.code == 0, built
    [orders] = [b for b in built.json()["bundles"] if b["name"] == "orders"]
    assert orders["import_check"]["status"] == "imported"
    assert f"python{RUNTIME.removeprefix('python')}" in orders["import_check"]["note"]  # under which interpreter
    assert invoked.code == 0, invoked
    result = invoked.json()["result"]
    assert result["tag"] == "from-the-layer" and result["when"] == 2026
    assert result["boto3"] and "/runtime/boto3/" in result["from"]
    # The runtime's packages come last, and nothing of relay (not even the bootstrap's folder) is on the path.
    assert result["path"][-1].endswith("/runtime")
    assert not any("builder" in entry or ("site-packages" in entry and "/opt/" not in entry) for entry in result["path"])


def test_a_bundle_copy_of_a_provided_package_wins_over_the_runtimes(tmp_path: Path, relay) -> None:
    code = "import jmespath\n\n\ndef handle(event, context):\n    return jmespath.__file__\n"
    root = make_project(tmp_path / "app", code)
    (root / "functions/orders/jmespath.py").write_text("# the function's own jmespath\n")
    assert relay("build", cwd=root).code == 0

    run = relay("invoke", "orders", "--json", cwd=root)

    assert run.code == 0, run
    assert run.json()["result"].endswith("/task/jmespath.py")


def test_init_calling_aws_is_imported_up_to_the_call_and_never_reaches_aws(tmp_path: Path, relay, monkeypatch) -> None:
    # Credentials in the shell that builds must not be what a handler's import-time call uses.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKING")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: a call would hang or refuse
    code = "import boto3\n\nNAME = boto3.client('ssm').get_parameter(Name='x')\n\n\ndef handle(event, context):\n    return 1\n"
    root = make_project(tmp_path / "app", code)

    run = relay("build", "--json", cwd=root)

    assert run.code == 0, run
    [orders] = [b for b in run.json()["bundles"] if b["name"] == "orders"]
    assert orders["import_check"]["status"] == "imported"
    assert "NoCredentialsError" in orders["import_check"]["note"]
    assert "the rest of init was resolved statically" in orders["import_check"]["note"]
    assert json.loads((root / "dist/orders.manifest.json").read_text())["handler"] == "orders.app.handle"


def test_an_absent_module_imported_after_an_aws_call_at_init_still_fails(tmp_path: Path, relay, monkeypatch) -> None:
    # The import stops at the call (no credentials); what init imports after it must still be there.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    code = ("import boto3\n\nNAME = boto3.client('ssm').get_parameter(Name='x')\nimport not_in_the_lock\n\n\n"
            "def handle(event, context):\n    return 1\n")
    root = make_project(tmp_path / "app", code)

    run = relay("build", cwd=root)

    assert run.code == 4, run
    assert "not_in_the_lock" in run.stderr


def test_the_handler_reaches_aws_as_the_callers_environment_says(tmp_path: Path, relay) -> None:
    from builder.config import load_project
    from builder.runtime.invocation import invoke_function

    code = ("import os\n\n\ndef handle(event, context):\n"
            "    return {k: os.environ.get(k) for k in ('AWS_ENDPOINT_URL', 'AWS_ACCESS_KEY_ID', 'AWS_REGION', 'HOME')}\n")
    root = make_project(tmp_path / "app", code)
    assert relay("build", cwd=root).code == 0
    # What `relay invoke` hands over when `relay local` is up: the sandbox's endpoint and keys.
    sandbox_env = {"PATH": "/usr/bin:/bin", "HOME": "/home/me", "AWS_ENDPOINT_URL": "http://127.0.0.1:4999",
                   "AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox", "AWS_DEFAULT_REGION": "eu-west-1"}

    outcome = invoke_function(load_project(root / "relay.toml"), "orders", host_env=sandbox_env)

    assert outcome.ok, outcome.error
    assert outcome.result == {"AWS_ENDPOINT_URL": "http://127.0.0.1:4999", "AWS_ACCESS_KEY_ID": "sandbox",
                              "AWS_REGION": "eu-west-1", "HOME": None}
