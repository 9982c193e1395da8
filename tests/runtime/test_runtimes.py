import pytest

from builder import schemas
from builder.errors import ConfigError
from builder.runtime.runtimes import RUNTIMES, lambda_runtime, machine_of


def test_the_config_schema_accepts_exactly_the_modelled_runtimes():
    assert tuple(schemas.load("config")["$defs"]["runtime"]["enum"]) == tuple(RUNTIMES)


def test_manifests_and_releases_accept_exactly_the_modelled_runtimes():
    # a python3.14 bundle must publish and promote like any other
    assert tuple(schemas.load("manifest")["properties"]["runtime"]["enum"]) == tuple(RUNTIMES)
    assert tuple(schemas.load("release")["properties"]["runtime"]["enum"]) == tuple(RUNTIMES)


def test_python314_runs_on_amazon_linux_2023():
    runtime = lambda_runtime("python3.14")
    assert (runtime.python, runtime.glibc, runtime.os) == ("3.14", (2, 34), "Amazon Linux 2023")


def test_a_runtime_names_its_python_and_glibc():
    runtime = lambda_runtime("python3.11")
    assert (runtime.python, runtime.python_tuple, runtime.glibc) == ("3.11", (3, 11), (2, 26))


def test_unknown_runtime_and_architecture_are_config_errors():
    with pytest.raises(ConfigError, match="python2.7"):
        lambda_runtime("python2.7")
    with pytest.raises(ConfigError, match="sparc"):
        machine_of("sparc")
