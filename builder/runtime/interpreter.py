"""Which Python runs a function here, and whether this machine can load what was built for Lambda.

A bundle for the host's architecture runs under an installed Python of the
runtime's version (`find_python`). A bundle for the other architecture runs
only under emulation: `qemu-<machine>` (qemu-user, e.g. Debian's
`qemu-user-static`) with a Python of the runtime's version built for that
machine, in a root folder named by `QEMU_LD_PREFIX` (qemu's own variable for
the target's libraries), such as an exported Lambda base image
(`var/lang/bin/python3.14`). relay only looks for these; it installs nothing.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import attrs

from builder.bundle.pythons import find_python
from builder.frozen import to_tuple

# `uname -m` -> Lambda's architecture names.
HOST_MACHINE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


@attrs.frozen
class Interpreter:
    """A Python to run a function under: the runtime's own version, or a stand-in with a note saying so."""

    path: Path
    version: str  # "3.12"
    note: str = ""  # set when this is not the runtime's Python
    launcher: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)  # e.g. ("qemu-aarch64", "-L", root)

    def describe(self) -> str:
        """"/usr/bin/python3.12", or "/r/var/lang/bin/python3.14 under qemu-aarch64"."""
        return f"{self.path} under {Path(self.launcher[0]).name}" if self.launcher else str(self.path)


def runtime_python(runtime: str) -> Interpreter | None:
    """The runtime's own Python ("python3.12" -> an installed 3.12), or None when none is installed."""
    version = runtime.removeprefix("python")
    found = find_python(version)
    return Interpreter(found, version) if found is not None else None



# Where a Python sits inside a root folder for another machine: Lambda's base image first.
_EMULATED_PYTHONS = ("var/lang/bin/python{v}", "usr/local/bin/python{v}", "usr/bin/python{v}")
_PROBE = "import sys; print('%d.%d' % sys.version_info[:2])"


def emulated_python(runtime: str, machine: str) -> Interpreter | None:
    """The runtime's Python built for `machine` ("aarch64"), run by qemu-user; None unless both are found."""
    qemu = shutil.which(f"qemu-{machine}-static") or shutil.which(f"qemu-{machine}")
    root = os.environ.get("QEMU_LD_PREFIX") or f"/usr/{machine}-linux-gnu"
    if qemu is None or not Path(root).is_dir():
        return None
    return _probe_emulated(qemu, root, runtime.removeprefix("python"))


@functools.cache
def _probe_emulated(qemu: str, root: str, version: str) -> Interpreter | None:
    import subprocess

    for pattern in _EMULATED_PYTHONS:
        candidate = Path(root) / pattern.format(v=version)
        if not candidate.is_file():
            continue
        launcher = (qemu, "-L", root)
        try:
            done = subprocess.run([*launcher, str(candidate), "-I", "-S", "-c", _PROBE], capture_output=True,
                                  text=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip() == version:
            return Interpreter(candidate, version, launcher=launcher)
    return None


def host_architecture() -> str:
    machine = os.uname().machine
    return HOST_MACHINE.get(machine, machine)


def architecture_note(architecture: str) -> str:
    """Why native code of a bundle built for `architecture` may not load here ("" when it can)."""
    host = host_architecture()
    if architecture == host:
        return ""
    return f"built for {architecture}, running on a {host} host: native extensions of the bundle cannot load"
