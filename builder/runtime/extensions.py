"""Which native files Lambda's Python can load: by file name (the extension suffix) and by ELF header.

CPython on Linux loads an extension module `m` from `m.cpython-3XY-<machine>-linux-gnu.so`,
`m.abi3.so` or `m.so` (`importlib.machinery.EXTENSION_SUFFIXES`); a file with
another Python's or machine's tag is not even looked at, so the import fails
with "no module named m". The ELF header's machine field says what a shared
object was really built for, whatever its name.
"""

from __future__ import annotations

from pathlib import Path

# ELF e_machine values (the ELF specification's EM_* numbers).
_ELF_MACHINES = {0x03: "i386", 0x28: "arm", 0x3E: "x86_64", 0xB7: "aarch64"}
_ELF_MAGIC = b"\x7fELF"


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
