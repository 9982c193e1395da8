"""Wheel choice for the Lambda platform: pure functions over names."""

from __future__ import annotations

import pytest
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

from builder.bundle.platform import (
    pip_target_args,
    platform_tags,
    python_version,
    wheel_compatible,
)
from builder.errors import ConfigError
from builder.runtime.runtimes import RUNTIMES as LAMBDA_RUNTIMES

RUNTIMES = sorted(LAMBDA_RUNTIMES)
ARCHES = ["x86_64", "arm64"]


def test_python_version():
    assert [python_version(r) for r in RUNTIMES] == ["3.11", "3.12", "3.13", "3.14"]


@pytest.mark.parametrize("arch", ARCHES)
def test_python314_takes_amazon_linux_2023_tags_and_cp314(arch):
    assert platform_tags("python3.14", arch) == platform_tags("python3.12", arch)
    args = pip_target_args("python3.14", arch)
    assert args[-3:] == ["--python-version", "3.14", "--only-binary=:all:"]


def test_tags_python311_x86_64():
    tags = platform_tags("python3.11", "x86_64")
    assert tags[0] == "manylinux_2_26_x86_64"
    assert "manylinux_2_27_x86_64" not in tags and "manylinux_2_28_x86_64" not in tags
    assert tags[-2:] == ("manylinux_2_5_x86_64", "manylinux1_x86_64")
    # each legacy alias right after the glibc version it names
    assert tags[tags.index("manylinux_2_17_x86_64") + 1] == "manylinux2014_x86_64"
    assert tags[tags.index("manylinux_2_12_x86_64") + 1] == "manylinux2010_x86_64"
    assert len(tags) == (26 - 5 + 1) + 3


def test_tags_python312_arm64():
    tags = platform_tags("python3.12", "arm64")
    assert tags[0] == "manylinux_2_34_aarch64"
    assert tags[-2:] == ("manylinux_2_17_aarch64", "manylinux2014_aarch64")
    assert all(t.endswith("_aarch64") for t in tags)
    assert len(tags) == (34 - 17 + 1) + 1


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("arch", ARCHES)
def test_tags_are_unique_and_newest_first(runtime, arch):
    tags = platform_tags(runtime, arch)
    assert len(set(tags)) == len(tags)
    minors = [int(t.split("_")[2]) for t in tags if t.startswith("manylinux_2_")]
    assert minors == sorted(minors, reverse=True)
    assert minors[0] == LAMBDA_RUNTIMES[runtime].glibc[1]
    assert "manylinux1_x86_64" in tags if arch == "x86_64" else "manylinux2010_aarch64" not in tags


def test_python313_shares_python312_glibc():
    assert platform_tags("python3.13", "x86_64") == platform_tags("python3.12", "x86_64")


def test_pip_target_args():
    args = pip_target_args("python3.12", "arm64")
    tags = platform_tags("python3.12", "arm64")
    assert args[: 2 * len(tags)] == [x for tag in tags for x in ("--platform", tag)]
    assert args[2 * len(tags) :] == ["--implementation", "cp", "--python-version", "3.12", "--only-binary=:all:"]


@pytest.mark.parametrize(
    ("filename", "runtime", "arch", "expected"),
    [
        ("pydantic_core-2.27.2-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", "python3.12", "arm64", True),
        ("pydantic_core-2.27.2-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", "python3.12", "x86_64", False),
        ("pydantic_core-2.27.2-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", "python3.13", "arm64", False),
        ("charset_normalizer-3.4.1-cp311-cp311-musllinux_1_2_x86_64.whl", "python3.11", "x86_64", False),
        ("charset_normalizer-3.4.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "python3.11", "x86_64", True),
        ("cryptography-44.0.0-cp39-abi3-manylinux_2_34_x86_64.whl", "python3.11", "x86_64", False),
        ("cryptography-44.0.0-cp39-abi3-manylinux_2_34_x86_64.whl", "python3.12", "x86_64", True),
        ("cryptography-44.0.0-cp39-abi3-manylinux_2_28_aarch64.whl", "python3.11", "arm64", False),
        ("cryptography-44.0.0-cp39-abi3-manylinux_2_28_aarch64.whl", "python3.13", "arm64", True),
        ("cryptography-44.0.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "python3.11", "x86_64", True),
        ("numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "python3.11", "x86_64", True),
        ("numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "python3.12", "x86_64", False),
        ("numpy-1.26.4-cp312-cp312-macosx_11_0_arm64.whl", "python3.12", "arm64", False),
        ("simplejson-3.19.3-cp311-cp311-manylinux1_x86_64.manylinux_2_5_x86_64.whl", "python3.11", "x86_64", True),
        ("whatever-1.0-cp312-cp312-linux_x86_64.whl", "python3.12", "x86_64", False),
        ("whatever-1.0-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl", "python3.12", "x86_64", False),
        ("whatever-1.0-cp312-cp312-win_amd64.whl", "python3.12", "x86_64", False),
        ("whatever-1.0-cp312-cp312-manylinux_2_35_x86_64.whl", "python3.12", "x86_64", False),
        ("six-1.17.0-py2.py3-none-any.whl", "python3.11", "arm64", True),
        ("typing_extensions-4.12.2-py3-none-any.whl", "python3.13", "x86_64", True),
        ("newer-1.0-py312-none-any.whl", "python3.11", "x86_64", False),
        ("newer-1.0-py312-none-any.whl", "python3.12", "x86_64", True),
        ("old-1.0-py2-none-any.whl", "python3.12", "x86_64", False),
        ("pure-1.0-cp312-none-any.whl", "python3.12", "x86_64", True),
        ("pydantic_core-2.41.5-cp314-cp314-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", "python3.14", "arm64", True),
        ("pydantic_core-2.41.5-cp314-cp314-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "python3.14", "x86_64", True),
        ("pydantic_core-2.41.5-cp314-cp314-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "python3.14", "arm64", False),
        ("pydantic_core-2.41.5-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "python3.14", "x86_64", False),
        ("pydantic_core-2.41.5-cp314-cp314-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "python3.13", "x86_64", False),
        ("pydantic_core-2.41.5-cp314-cp314t-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "python3.14", "x86_64", False),
        ("cryptography-46.0.3-cp311-abi3-manylinux_2_34_aarch64.whl", "python3.14", "arm64", True),
        ("cryptography-46.0.3-cp311-abi3-manylinux_2_34_x86_64.whl", "python3.14", "x86_64", True),
        ("whatever-1.0-cp314-cp314-manylinux_2_35_aarch64.whl", "python3.14", "arm64", False),
        ("whatever-1.0-cp314-cp314-musllinux_1_2_aarch64.whl", "python3.14", "arm64", False),
        ("notawheel-1.0.tar.gz", "python3.12", "x86_64", False),
        ("bad-name.whl", "python3.12", "x86_64", False),
    ],
)
def test_wheel_compatible(filename, runtime, arch, expected):
    assert wheel_compatible(filename, runtime, arch) is expected


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("arch", ARCHES)
def test_agrees_with_packaging_tag_order(runtime, arch):
    """Cross-check against the tags packaging would list for such a host."""
    minor = int(python_version(runtime).split(".")[1])
    platforms = list(platform_tags(runtime, arch))
    supported = set(cpython_tags((3, minor), abis=[f"cp3{minor}"], platforms=platforms))
    supported |= set(compatible_tags((3, minor), interpreter=f"cp3{minor}", platforms=platforms))
    names = [
        f"x-1.0-{interp}-{abi}-{plat}.whl"
        for interp in ("cp39", "cp310", "cp311", "cp312", "cp313", "cp314", "py3", "py311", "py314", "py2.py3", "pp310")
        for abi in ("abi3", "none", "cp311", "cp312", "cp313", "cp314", "cp314t")
        for plat in (*platforms[::5], "manylinux_2_40_x86_64", "musllinux_1_2_aarch64", "linux_x86_64")
    ]
    for name in names:
        _, _, _, tags = parse_wheel_filename(name)
        assert wheel_compatible(name, runtime, arch) == (not tags.isdisjoint(supported)), name


@pytest.mark.parametrize(("runtime", "arch"), [("python3.10", "x86_64"), ("nodejs20.x", "x86_64"), ("python3.12", "aarch64")])
def test_unknown_runtime_or_arch(runtime, arch):
    with pytest.raises(ConfigError):
        platform_tags(runtime, arch)


def test_tag_type_is_packaging_tag():
    # parse_wheel_filename's tags are what wheel_compatible reads; guard the assumption.
    _, _, _, tags = parse_wheel_filename("six-1.17.0-py2.py3-none-any.whl")
    assert Tag("py3", "none", "any") in tags
