"""Requirements read from pyproject.toml (PEP 621, PEP 735, poetry), and each way the config can be wrong."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from lock_helpers import make_app, relay

from builder.config import load_project
from builder.errors import ConfigError
from builder.lock.pyproject import Where, declared_requirements, poetry_specifier, python_marker

KEY = "functions.api.requirements"


def pyproject(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def declared(path: Path, group: str | None = None) -> tuple[str, ...]:
    return declared_requirements(path, group, KEY)


def config_error(path: Path, group: str | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        declared(path, group)
    assert caught.value.exit_code == 3
    assert KEY in caught.value.message and "pyproject.toml" in caught.value.message  # names the key and the file
    return caught.value


PEP621 = """\
    [project]
    name = "shop"
    version = "1.0.0"
    dependencies = ["Pydantic[Email] >= 2.9, <3", "boto3==1.35.98", "requests", "requests"]

    [project.optional-dependencies]
    aws = ["aws-lambda-powertools[tracer]>=3"]
    all = ["shop[aws]", "orjson; platform_machine == 'x86_64'"]

    [dependency-groups]
    test = ["pytest>=8"]
    dev = [{include-group = "test"}, "ruff"]
"""


def test_pep621_main_dependencies_are_normalised_sorted_and_unique(tmp_path: Path) -> None:
    assert declared(pyproject(tmp_path, PEP621)) == ("boto3==1.35.98", "pydantic[email]<3,>=2.9", "requests")


def test_an_optional_dependency_group_is_that_group_only_and_follows_self_references(tmp_path: Path) -> None:
    path = pyproject(tmp_path, PEP621)
    assert declared(path, "aws") == ("aws-lambda-powertools[tracer]>=3",)
    # `shop[aws]` in shop's own extras means shop's requirements and the aws extra
    assert declared(path, "all") == (
        "aws-lambda-powertools[tracer]>=3", "boto3==1.35.98", 'orjson; platform_machine == "x86_64"',
        "pydantic[email]<3,>=2.9", "requests")


def test_a_pep735_group_follows_include_group(tmp_path: Path) -> None:
    assert declared(pyproject(tmp_path, PEP621), "dev") == ("pytest>=8", "ruff")


def test_reformatting_or_a_version_bump_reads_the_same(tmp_path: Path) -> None:
    before = declared(pyproject(tmp_path, PEP621))
    reformatted = PEP621.replace('version = "1.0.0"', 'version = "1.1.0"').replace(
        '"Pydantic[Email] >= 2.9, <3", "boto3==1.35.98"', '\n  "boto3 == 1.35.98",\n  "pydantic[email]<3,>=2.9"')
    assert declared(pyproject(tmp_path, reformatted)) == before


POETRY = """\
    [tool.poetry]
    name = "product"
    version = "0.1.0"

    [tool.poetry.dependencies]
    python = "^3.12"
    pydantic = "^2.9.2"
    aws-lambda-powertools = {version = "~3.4", extras = ["tracer", "validation"]}
    cachetools = "*"
    requests = ">=2.31,<3"
    mypy-boto3-dynamodb = "1.35.94"
    urllib3 = ">= 1.26 <3"
    orjson = {version = "^3.10", python = ">=3.12", markers = "platform_machine == 'x86_64'"}
    zero = "^0.2.3"
    psycopg = {version = "^3.2", optional = true}

    [tool.poetry.extras]
    postgres = ["psycopg"]

    [tool.poetry.group.common.dependencies]
    boto3 = "~1.35"

    [tool.poetry.dev-dependencies]
    pytest = "^8"
"""


def test_poetry_main_dependencies_convert_as_poetry_reads_them(tmp_path: Path) -> None:
    assert declared(pyproject(tmp_path, POETRY)) == (
        "aws-lambda-powertools[tracer,validation]<3.5,>=3.4",
        "cachetools",
        "mypy-boto3-dynamodb==1.35.94",
        'orjson<4.0,>=3.10; python_version >= "3.12" and platform_machine == "x86_64"',
        "pydantic<3.0.0,>=2.9.2",
        "requests<3,>=2.31",
        "urllib3<3,>=1.26",
        "zero<0.3.0,>=0.2.3",
    )  # no python, no optional psycopg


def test_poetry_groups_extras_and_legacy_dev_dependencies(tmp_path: Path) -> None:
    path = pyproject(tmp_path, POETRY)
    assert declared(path, "common") == ("boto3<1.36,>=1.35",)
    assert declared(path, "postgres") == ("psycopg<4.0,>=3.2",)
    assert declared(path, "dev") == ("pytest<9,>=8",)


@pytest.mark.parametrize(("constraint", "expected"), [
    ("^1.2.3", "<2.0.0,>=1.2.3"), ("^0.2.3", "<0.3.0,>=0.2.3"), ("^0.0.3", "<0.0.4,>=0.0.3"), ("^0", "<1,>=0"),
    ("~1.2.3", "<1.3.0,>=1.2.3"), ("~1", "<2,>=1"), ("~=1.2", "~=1.2"), ("*", ""), ("1.2.*", "==1.2.*"),
    ("2.0", "==2.0"), (">=1, <2", "<2,>=1"), ("!=1.5", "!=1.5"),
])
def test_poetry_constraints(constraint: str, expected: str) -> None:
    assert str(poetry_specifier(constraint, "x", Where(Path("pyproject.toml"), KEY))) == expected


def test_poetry_python_constraint_becomes_a_marker() -> None:
    where = Where(Path("pyproject.toml"), KEY)
    assert python_marker("^3.9", "x", where) == 'python_version < "4.0" and python_version >= "3.9"'
    assert python_marker(">=3.8.1", "x", where) == 'python_full_version >= "3.8.1"'


@pytest.mark.parametrize(("text", "group", "says"), [
    (PEP621, "nope", "no group 'nope'"),
    ('[project]\nname = "a"\ndependencies = ["pydantic >>= 2"]\n', None, "malformed requirement 'pydantic >>= 2'"),
    ('[project]\nname = "a"\ndependencies = ["lib @ file:///src/lib"]\n', None, "relay can lock only index packages"),
    ('[tool.poetry.dependencies]\npython = "^3.12"\nlib = {path = "../lib", develop = true}\n', None,
     "a path dependency"),
    ('[tool.poetry.dependencies]\nlib = {git = "https://github.com/o/lib.git"}\n', None, "a git dependency"),
    ('[tool.poetry.dependencies]\nlib = "^1.0 || ^2.0"\n', None, "either-or"),
    ('[tool.black]\nline-length = 100\n', None, "no [project] or [tool.poetry] table"),
    ('[project]\nname = "a"\ndynamic = ["dependencies"]\n', None, "dynamic"),
    ('[dependency-groups]\na = [{include-group = "b"}]\nb = [{include-group = "a"}]\n', "a", "includes itself"),
    ('[project]\nname = "a"\n[project.optional-dependencies]\ndev = []\n[dependency-groups]\ndev = []\n', "dev",
     "declared more than once"),
    ("[project\n", None, "not valid TOML"),
])
def test_each_bad_pyproject_is_a_config_error_naming_file_and_key(tmp_path: Path, text: str, group: str | None,
                                                                   says: str) -> None:
    error = config_error(pyproject(tmp_path, text), group)
    assert says in error.message


def test_a_missing_group_lists_the_groups_there_are(tmp_path: Path) -> None:
    error = config_error(pyproject(tmp_path, PEP621), "nope")
    assert error.hint is not None and "all, aws, dev, test" in error.hint


# -- the config keys --------------------------------------------------------------------------------


@pytest.mark.parametrize(("edit", "says"), [
    (('requirements = "pyproject.toml"', 'requirements = "deps.toml"'), "expected a file at deps.toml"),
    (('requirements = "pyproject.toml"', 'requirements = "relay.toml"'), "unsupported file 'relay.toml'"),
    (('requirements = "pyproject.toml#common"', 'requirements = "r.in#common"'), "applies to pyproject.toml only"),
    (('pins = "uv.lock"', 'pins = "relay.toml"'), "functions.orders.pins: unsupported file 'relay.toml'"),
    (('pins = "uv.lock"', 'pins = "missing/uv.lock"'), "functions.orders.pins: expected a file"),
    (('requirements = "pyproject.toml#common"', 'requirements = "pyproject.toml#common"\nlock = "locks/x.txt"'), ""),
])
def test_bad_requirement_keys_are_config_errors(tmp_path: Path, edit: tuple[str, str], says: str) -> None:
    root = make_app(tmp_path / "app", pins={"greeting": "1.0"})
    (root / "r.in").write_text("greeting\n", encoding="utf-8")
    config = root / "relay.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(*edit, 1), encoding="utf-8")
    if not says:  # the control: a lock of one's own is fine
        assert load_project(config).layers["common"].lock == root / "locks/x.txt"
        return
    with pytest.raises(ConfigError) as caught:
        load_project(config)
    assert says in caught.value.message


def test_pins_without_requirements_and_two_targets_on_one_lock_are_refused(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", pins={"greeting": "1.0"})
    config = root / "relay.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('requirements = "pyproject.toml"\n', "", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match="functions.orders.pins: set without requirements"):
        load_project(config)
    config.write_text(text + 'lock = "locks/function-orders.txt"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="functions.orders and layers.common would both write locks/function-orders.txt"):
        load_project(config)


def test_default_locks_of_one_pyproject_are_one_per_target(tmp_path: Path) -> None:
    project = load_project(make_app(tmp_path / "app", pins={}) / "relay.toml")
    assert project.functions["orders"].lock == project.root / "locks/function-orders.txt"
    assert project.layers["common"].lock == project.root / "locks/layer-common.txt"
    assert project.layers["common"].requirements_group == "common"


def test_a_missing_group_through_the_cli_exits_3(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", layer_requirements="pyproject.toml#nope")
    done = relay("lock", "--check", cwd=root)
    assert done.returncode == 3, done.stderr
    assert "layers.common.requirements: pyproject.toml: no group 'nope'" in done.stderr
