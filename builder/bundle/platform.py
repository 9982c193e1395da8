"""Which wheels Lambda can load: pure functions over runtime, architecture and file names.

No pip and no network here. pip does not widen `--platform`: given
`manylinux_2_34_x86_64` it will not take a `manylinux2014_x86_64` wheel, so the
build passes every tag the runtime's glibc accepts.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from builder.runtime.runtimes import lambda_runtime, machine_of

if TYPE_CHECKING:
    from packaging.tags import Tag

# The oldest glibc a manylinux tag exists for, per machine (PEP 600).
_OLDEST_GLIBC_MINOR = {"x86_64": 5, "aarch64": 17}
# PEP 599/571/513 names for glibc 2.17, 2.12 and 2.5.
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
_CPYTHON_TAG = re.compile(r"^cp3(\d+)$")
_PY3_TAG = re.compile(r"^py3(\d*)$")


def python_version(runtime: str) -> str:
    """`"python3.12"` -> `"3.12"`."""
    return lambda_runtime(runtime).python


def platform_tags(runtime: str, arch: str) -> tuple[str, ...]:
    """Every manylinux tag the runtime's glibc loads on `arch`, most specific first.

    Ordered as packaging orders a host's own tags: newest glibc first, each
    legacy alias right after the `manylinux_2_N` tag it names.
    """
    major, newest = lambda_runtime(runtime).glibc
    machine = machine_of(arch)
    tags: list[str] = []
    for minor in range(newest, _OLDEST_GLIBC_MINOR[machine] - 1, -1):
        tags.append(f"manylinux_{major}_{minor}_{machine}")
        legacy = _LEGACY_MANYLINUX.get(minor)
        if legacy:
            tags.append(f"{legacy}_{machine}")
    return tuple(tags)


def pip_target_args(runtime: str, arch: str) -> list[str]:
    """pip options that select wheels for the Lambda runtime instead of the build host."""
    args: list[str] = []
    for tag in platform_tags(runtime, arch):
        args += ["--platform", tag]
    return [*args, "--implementation", "cp", "--python-version", python_version(runtime), "--only-binary=:all:"]


def wheel_compatible(filename: str, runtime: str, arch: str) -> bool:
    """Whether Lambda's `runtime` on `arch` can load the wheel named `filename`.

    A name that is not a valid wheel file name is not loadable: False.
    """
    minor = lambda_runtime(runtime).python_tuple[1]
    platforms = set(platform_tags(runtime, arch)) | {"any"}
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename  # only for a wheel choice

    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return False
    return any(tag.platform in platforms and _python_abi_ok(tag, minor) for tag in tags)


def _python_abi_ok(tag: Tag, minor: int) -> bool:
    """The interpreter and ABI parts of a tag, for CPython 3.<minor> (as pip ranks them)."""
    cpython = _CPYTHON_TAG.match(tag.interpreter)
    if cpython:
        built_for = int(cpython.group(1))
        if built_for == minor:
            return tag.abi in (f"cp3{minor}", "abi3", "none")
        # The stable ABI loads on every later CPython 3.
        return built_for < minor and tag.abi == "abi3"
    generic = _PY3_TAG.match(tag.interpreter)
    if generic:
        generic_minor = generic.group(1)
        return tag.abi == "none" and (not generic_minor or int(generic_minor) <= minor)
    return False
