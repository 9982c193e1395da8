"""Which native files Lambda's Python can load: by file name (the extension suffix) and by ELF header.

CPython on Linux loads an extension module `m` from `m.cpython-3XY-<machine>-linux-gnu.so`,
`m.abi3.so` or `m.so` (`importlib.machinery.EXTENSION_SUFFIXES`); a file with
another Python's or machine's tag is not even looked at, so the import fails
with "no module named m". The ELF header's machine field says what a shared
object was really built for, whatever its name.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

# ELF e_machine values (the ELF specification's EM_* numbers).
_ELF_MACHINES = {0x03: "i386", 0x28: "arm", 0x3E: "x86_64", 0xB7: "aarch64"}
_ELF_MAGIC = b"\x7fELF"


@attrs.frozen
class Unloadable:
    """A native file Lambda's Python would not load: the module (or library) it is, where, and why."""

    name: str
    where: str
    why: str


def extension_suffixes(python: str, machine: str) -> tuple[str, ...]:
    """The suffixes CPython `python` ("3.14") on Linux `machine` ("aarch64") loads extension modules from."""
    tag = python.replace(".", "")
    return (f".cpython-{tag}-{machine}-linux-gnu.so", ".abi3.so", ".so")


def split_extension(filename: str) -> tuple[str, str] | None:
    """("m", ".cpython-312-x86_64-linux-gnu.so") for an extension module's file name; None for other names."""
    if not filename.endswith(".so"):
        return None
    base, dot, rest = filename.partition(".")
    if not base or not dot:
        return None
    return base, "." + rest


def is_tagged_for_cpython(suffix: str) -> bool:
    """Whether an extension suffix names one CPython and machine (".cpython-312-x86_64-linux-gnu.so")."""
    return suffix.startswith(".cpython-")


def elf_machine(path: Path) -> str | None:
    """The machine an ELF file is built for ("x86_64", "aarch64", ...); None when `path` is not ELF."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
    except OSError:
        return None
    if len(head) < 20 or not head.startswith(_ELF_MAGIC):
        return None
    number = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return _ELF_MACHINES.get(number, f"machine {number:#x}")


def unloadable_natives(folders: list[tuple[Path, str]], *, python: str, machine: str) -> tuple[int, list[Unloadable]]:
    """(how many native files were checked, the ones Lambda could not load) across the bundle and layers.

    A CPython-tagged extension module needs the target's tag unless a loadable
    file for the same module sits beside it; its ELF header (and that of a
    wheel's vendored `*.libs/` libraries) must name the target's machine.
    Untagged `.so` files are only checked when imported: some packages ship
    helpers for several machines.
    """
    wanted = extension_suffixes(python, machine)
    checked, findings = 0, list[Unloadable]()
    seen: set[Path] = set()
    for folder, where in folders:
        if not folder.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(folder):
            here = Path(dirpath)
            if here in seen:
                dirnames[:] = []
                continue
            seen.add(here)
            dirnames.sort()
            names = set(filenames)
            vendored = here.name.endswith(".libs")
            for filename in sorted(filenames):
                split = split_extension(filename)
                is_lib = vendored and (".so." in filename or filename.endswith(".so"))
                if split is None and not is_lib:
                    continue
                if split is not None and not is_lib and not (is_tagged_for_cpython(split[1]) or split[1] == ".abi3.so"):
                    continue
                checked += 1
                path = here / filename
                shown = _shown_in(folder, where, path)
                if split is not None and not is_lib and split[1] not in wanted:
                    if not any(split[0] + suffix in names for suffix in wanted):
                        findings.append(Unloadable(split[0], shown,
                                                f"built for another Python or machine: CPython {python} on {machine} "
                                                f"loads {' or '.join(wanted)}"))
                    continue
                built_for = elf_machine(path)
                if built_for is not None and built_for != machine:
                    findings.append(Unloadable(split[0] if split else filename, shown,
                                            f"an ELF file for {built_for}, not {machine}"))
    return checked, findings


def _shown_in(folder: Path, where: str, path: Path) -> str:
    rel = path.relative_to(folder).as_posix()
    return f"/var/task/{rel}" if where == "bundle" else f"{where}: {rel}"
