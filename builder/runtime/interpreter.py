"""Which Python runs a function here, and whether this machine can load what was built for Lambda."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import attrs

from builder.bundle.pythons import find_python, running_version

# `uname -m` -> Lambda's architecture names.
HOST_MACHINE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


@attrs.frozen
class Interpreter:
    """A Python to run a function under: the runtime's own version, or a stand-in with a note saying so."""

    path: Path
    version: str  # "3.12"
    note: str = ""  # set when this is not the runtime's Python


def runtime_python(runtime: str) -> Interpreter | None:
    """The runtime's own Python ("python3.12" -> an installed 3.12), or None when none is installed."""
    version = runtime.removeprefix("python")
    found = find_python(version)
    return Interpreter(found, version) if found is not None else None


def choose_python(runtime: str) -> Interpreter:
    """The runtime's own Python when installed, else the one running relay (with a note saying so)."""
    found = runtime_python(runtime)
    if found is not None:
        return found
    note = f"{runtime} is not installed here: running under Python {running_version()} instead"
    return Interpreter(Path(sys.executable), running_version(), note)


def host_architecture() -> str:
    machine = os.uname().machine
    return HOST_MACHINE.get(machine, machine)


def architecture_note(architecture: str) -> str:
    """Why native code of a bundle built for `architecture` may not load here ("" when it can)."""
    host = host_architecture()
    if architecture == host:
        return ""
    return f"built for {architecture}, running on a {host} host: native extensions of the bundle cannot load"
