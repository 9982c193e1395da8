"""The Lambda Python runtimes relay targets, and the Linux each runs on.

This table is the one place a runtime is described: the config schema's enum
lists the same names (a test holds them equal), wheel selection takes the
glibc from here, locks and the import check take the Python version.
"""

from __future__ import annotations

import attrs

from builder.errors import ConfigError


@attrs.frozen
class LambdaRuntime:
    name: str  # "python3.12"
    python: str  # "3.12"
    glibc: tuple[int, int]  # the newest glibc the runtime's OS provides
    os: str

    @property
    def python_tuple(self) -> tuple[int, int]:
        major, minor = self.python.split(".")
        return int(major), int(minor)


# python3.11 runs on Amazon Linux 2 (glibc 2.26); python3.12+ on Amazon Linux 2023 (2.34).
RUNTIMES: dict[str, LambdaRuntime] = {
    runtime.name: runtime
    for runtime in (
        LambdaRuntime("python3.11", "3.11", (2, 26), "Amazon Linux 2"),
        LambdaRuntime("python3.12", "3.12", (2, 34), "Amazon Linux 2023"),
        LambdaRuntime("python3.13", "3.13", (2, 34), "Amazon Linux 2023"),
        LambdaRuntime("python3.14", "3.14", (2, 34), "Amazon Linux 2023"),
    )
}

# Lambda's architecture names -> the machine names of wheel tags and `uname -m`.
MACHINES: dict[str, str] = {"x86_64": "x86_64", "arm64": "aarch64"}


def lambda_runtime(name: str) -> LambdaRuntime:
    try:
        return RUNTIMES[name]
    except KeyError:
        raise ConfigError(f"unsupported runtime {name!r}", hint=f"Use one of {', '.join(RUNTIMES)}.") from None


def machine_of(architecture: str) -> str:
    try:
        return MACHINES[architecture]
    except KeyError:
        raise ConfigError(f"unsupported architecture {architecture!r}",
                          hint=f"Use one of {', '.join(MACHINES)}.") from None
