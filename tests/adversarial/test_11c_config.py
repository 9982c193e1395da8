"""Issue 11, items 5, 8, 11, 12: relay.toml holes and local crashes give one typed error, never a traceback.

Each case goes through the CLI (`builder.cli.main`): the exit code the README
documents, one `error:` line and a `hint:` line on stderr, no traceback, and
with --json exactly one JSON document on stdout.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import textwrap
from pathlib import Path

import pytest

BASE = """\
[app]
name = "shop"
runtime = "python3.12"

[functions.orders]
source = "app"
packages = ["orders"]
handler = "orders.handler.handle"
{orders}
[functions.billing]
source = "app"
packages = ["billing"]
handler = "billing.handler.handle"
{billing}
{extra}
"""


def make_app(root: Path, *, orders: str = "", billing: str = "", extra: str = "") -> Path:
    """An app laid out like a real one: a package folder per function, a pyproject, docs, infra code."""
    for pkg in ("orders", "billing"):
        (root / "app" / pkg).mkdir(parents=True, exist_ok=True)
        (root / "app" / pkg / "__init__.py").write_text("")
        (root / "app" / pkg / "handler.py").write_text("def handle(event, context):\n    return {'ok': True}\n")
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / "index.md").write_text("# shop\n")
    (root / "infra").mkdir(exist_ok=True)
    (root / "infra" / "main.tf").write_text('resource "aws_s3_bucket" "b" {}\n')
    (root / "pyproject.toml").write_text('[project]\nname = "shop"\nversion = "0.1.0"\n')
    (root / ".gitignore").write_text("dist/\n.venv/\n")
    (root / "relay.toml").write_text(BASE.format(orders=orders, billing=billing, extra=textwrap.dedent(extra)),
                                     encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RELAY_SIGNING_KEY", raising=False)


def assert_clean_error(run, code: int, *needles: str) -> None:
    """Exit `code`, one error line and a hint, no traceback; each needle in the error line."""
    assert run.code == code, run
    lines = run.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, run
    assert any(line.startswith("hint: ") for line in lines), run
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run
    for needle in needles:
        assert needle in errors[0], (needle, run)


def assert_one_json_document(run, code: int) -> dict:
    assert run.code == code, run
    doc = json.loads(run.stdout)  # exactly one document: json.loads refuses trailing data
    assert doc["exit_code"] == code
    return doc


def build(relay, root: Path, *extra: str):
    return relay("build", "--no-import-check", *extra, cwd=root)


# -- item 5: unique Lambda function names -------------------------------------------------------


def test_two_functions_with_one_explicit_function_name_are_refused(relay, tmp_path: Path) -> None:
    root = make_app(tmp_path / "shop", orders='function_name = "shop-api"', billing='function_name = "shop-api"')
    run = build(relay, root)
    assert_clean_error(run, 3, "functions.orders.function_name", "functions.billing.function_name", "shop-api")
    assert not (root / "dist").exists()
    assert_one_json_document(build(relay, root, "--json"), 3)


def test_an_explicit_name_equal_to_another_functions_default_is_refused(relay, tmp_path: Path) -> None:
    root = make_app(tmp_path / "shop", billing='function_name = "shop-orders"')
    run = build(relay, root)
    assert_clean_error(run, 3, "functions.orders (default name)", "functions.billing.function_name", "shop-orders")


def test_distinct_names_still_build(relay, tmp_path: Path) -> None:
    root = make_app(tmp_path / "shop", billing='function_name = "shop-payments"')
    run = build(relay, root)
    assert run.code == 0, run


# -- item 5: schema types Lambda requires ------------------------------------------------------


@pytest.mark.parametrize(("orders", "needle"), [
    ("timeout = 7.0", "timeout"),
    ('environment = { "A=B" = "x" }', "environment"),
    ('environment = { "A\\u0000B" = "x" }', "environment"),
    ('environment = { "1ABC" = "x" }', "environment"),
    ('packages = ["../secrets"]', "packages"),
])
def test_values_lambda_refuses_are_config_errors(relay, tmp_path: Path, orders: str, needle: str) -> None:
    if orders.startswith("packages"):
        root = make_app(tmp_path / "shop")
        text = (root / "relay.toml").read_text().replace('packages = ["orders"]', orders, 1)
        (root / "relay.toml").write_text(text)
    else:
        root = make_app(tmp_path / "shop", orders=orders)
    run = build(relay, root)
    assert_clean_error(run, 3, needle)
    assert_one_json_document(build(relay, root, "--json"), 3)


def test_a_nul_in_an_environment_value_is_refused_without_showing_it(relay, tmp_path: Path) -> None:
    root = make_app(tmp_path / "shop", orders='environment = { TOKEN = "abc\\u0000secretvalue" }')
    run = build(relay, root)
    assert_clean_error(run, 3, "functions.orders.environment.TOKEN", "NUL")
    assert "secretvalue" not in run.stderr + run.stdout


ENVS = """
[environments.staging]
account = "111111111111"
region = "us-east-1"
{staging}
[environments.prod]
account = "222222222222"
region = "us-east-1"
{prod}
"""


@pytest.mark.parametrize(("staging", "prod", "needle"), [
    ('requires = "staging"', "", "staging -> staging"),
    ('requires = "prod"', 'requires = "staging"', "cycle"),
])
def test_requires_cycles_are_refused(relay, tmp_path: Path, staging: str, prod: str, needle: str) -> None:
    root = make_app(tmp_path / "shop", extra=ENVS.format(staging=staging, prod=prod))
    run = build(relay, root)
    assert_clean_error(run, 3, "requires", needle)


@pytest.mark.parametrize("interval", ['"99999999999d"', '"2d"', "172800"])
def test_canary_interval_is_bounded(relay, tmp_path: Path, interval: str) -> None:
    canary = f"[environments.prod.canary]\nsteps = [10, 50]\ninterval = {interval}\n"
    root = make_app(tmp_path / "shop", extra=ENVS.format(staging="", prod="") + canary)
    run = build(relay, root)
    assert_clean_error(run, 3, "interval")


def test_a_day_long_canary_interval_is_fine(relay, tmp_path: Path) -> None:
    canary = '[environments.prod.canary]\nsteps = [10, 50]\ninterval = "1d"\n'
    root = make_app(tmp_path / "shop", extra=ENVS.format(staging="", prod="") + canary)
    assert build(relay, root).code == 0


def test_the_validation_cache_tells_a_toml_date_from_a_string(relay, tmp_path: Path) -> None:
    root = make_app(tmp_path / "shop", orders='description = "1979-05-27"')
    assert build(relay, root).code == 0  # valid: validated once, then cached
    text = (root / "relay.toml").read_text().replace('description = "1979-05-27"', "description = 1979-05-27")
    (root / "relay.toml").write_text(text)
    run = build(relay, root)
    assert_clean_error(run, 3, "functions.orders.description")


# -- item 12: local crashes ---------------------------------------------------------------------


def test_a_non_utf8_file_name_under_a_package_is_refused_with_its_escaped_path(relay, tmp_path: Path) -> None:
    root = make_app(tmp_path / "shop")
    bad = os.fsencode(root / "app" / "orders") + b"/caf\xe9.txt"
    with open(bad, "wb") as fh:
        fh.write(b"x")
    run = build(relay, root)
    assert_clean_error(run, 4, "caf\\xe9.txt", "not UTF-8")
    assert not (root / "dist" / "index.json").exists()


def test_a_full_disk_while_writing_the_index_leaves_no_temp_file(relay, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_app(tmp_path / "shop")
    real_write_text = pathlib.Path.write_text

    def full_disk(self: Path, *args, **kwargs):
        if self.name.startswith(".index.json."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", full_disk)
    run = build(relay, root)
    assert_clean_error(run, 4, "index.json", os.strerror(errno.ENOSPC))
    assert not [p.name for p in (root / "dist").iterdir() if p.name.endswith(".tmp")]
    assert not (root / "dist" / "index.json").exists()


def test_keygen_to_an_unwritable_path_names_it(relay, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere, except where the kernel says no
            locked = Path("/proc/relay-11c")
        run = relay("keygen", "--out", str(locked / "relay.key"), cwd=tmp_path)
        assert_clean_error(run, 2, str(locked))
        doc = assert_one_json_document(relay("keygen", "--json", "--out", str(locked / "k"), cwd=tmp_path), 2)
        assert str(locked) in doc["message"]
        assert not locked.exists() or not list(locked.iterdir())
    finally:
        (tmp_path / "locked").chmod(0o700)


def test_keygen_into_a_file_as_folder_is_refused(relay, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    run = relay("keygen", "--out", str(tmp_path / "afile" / "relay.key"), cwd=tmp_path)
    assert_clean_error(run, 2, "afile")


@pytest.mark.parametrize("name", ["A=B", "A\\u0000B"])
def test_invoke_refuses_an_environment_variable_lambda_would_refuse(relay, tmp_path: Path, name: str) -> None:
    root = make_app(tmp_path / "shop")
    assert build(relay, root).code == 0
    text = (root / "relay.toml").read_text().replace('handler = "orders.handler.handle"',
                                                     f'handler = "orders.handler.handle"\nenvironment = {{ "{name}" = "x" }}')
    (root / "relay.toml").write_text(text)
    run = relay("invoke", "orders", cwd=root)
    assert_clean_error(run, 3, "environment")
    assert_one_json_document(relay("invoke", "orders", "--json", cwd=root), 3)


def test_the_runtime_checks_variables_from_any_source() -> None:
    from builder.errors import ConfigError
    from builder.runtime.environment import checked_variables

    assert checked_variables("orders", {"TABLE_NAME": "t"}) == {"TABLE_NAME": "t"}
    for bad in ({"A=B": "x"}, {"A\0B": "x"}, {"OK": "a\0b"}):
        with pytest.raises(ConfigError) as caught:
            checked_variables("orders", bad)
        assert "a\0b" not in caught.value.message


def test_an_event_that_is_not_utf8_is_a_usage_error(relay, tmp_path: Path) -> None:
    root = make_app(tmp_path / "shop")
    assert build(relay, root).code == 0
    (root / "event.json").write_bytes(b'{"name": "caf\xe9"}')
    assert_clean_error(relay("invoke", "orders", "--event", str(root / "event.json"), cwd=root), 2, "UTF-8")
