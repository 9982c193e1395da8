"""The standard library's top-level module names of a target Python, without that Python.

The static import check needs to know whether `import imp` works on
python3.12 (it does not) while running on whatever Python runs relay. This
host's `sys.stdlib_module_names` is the base; the table below says what each
version added and removed (top-level names, from each version's
`sys.stdlib_module_names`, and What's New for 3.14), and the base is moved
from the host's version to the target's along it, forwards or backwards.

A name here is one Lambda's build of CPython can have; a few need system
libraries Lambda's image does not carry (`tkinter`, `curses` may be absent),
which only a real import finds out.
"""

from __future__ import annotations

import functools
import sys

import attrs


@attrs.frozen
class StdlibChange:
    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()


# What version (3, N) changed relative to (3, N-1).
CHANGES: dict[tuple[int, int], StdlibChange] = {
    (3, 11): StdlibChange(added=frozenset({"tomllib", "_tokenize", "_typing"}), removed=frozenset({"binhex"})),
    (3, 12): StdlibChange(
        added=frozenset({"_pydatetime", "_pylong", "_sha2"}),
        # PEP 632 (distutils), PEP 594's first removals, and imp
        removed=frozenset({"asynchat", "asyncore", "distutils", "imp", "smtpd", "_bootsubprocess", "_sha256",
                           "_sha512"}),
    ),
    (3, 13): StdlibChange(
        added=frozenset({"_android_support", "_colorize", "_interpchannels", "_interpqueues", "_interpreters",
                         "_ios_support", "_opcode_metadata", "_pyrepl", "_suggestions", "_sysconfig", "_wmi"}),
        # PEP 594's "dead batteries", and lib2to3
        removed=frozenset({"aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "lib2to3", "mailcap",
                           "msilib", "nis", "nntplib", "ossaudiodev", "pipes", "sndhdr", "spwd", "sunau",
                           "telnetlib", "uu", "xdrlib", "_crypt", "_msi"}),
    ),
    # PEP 649/749 (annotationlib), PEP 784 (compression.zstd)
    (3, 14): StdlibChange(added=frozenset({"annotationlib", "compression", "_zstd", "_remote_debugging", "_hmac"})),
}


def parse_version(python: str) -> tuple[int, int]:
    major, minor = python.split(".")[:2]
    return int(major), int(minor)


@functools.cache
def stdlib_modules(python: str) -> frozenset[str]:
    """The top-level standard library module names of Python `python` ("3.14")."""
    return stdlib_modules_from(sys.stdlib_module_names, sys.version_info[:2], parse_version(python))


def stdlib_modules_from(base: frozenset[str] | set[str], base_version: tuple[int, int],
                        target: tuple[int, int]) -> frozenset[str]:
    """`base` (the names of Python `base_version`) moved along CHANGES to `target`."""
    names = set(base)
    if target > base_version:
        for version in sorted(v for v in CHANGES if base_version < v <= target):
            names = (names - CHANGES[version].removed) | CHANGES[version].added
    else:
        for version in sorted((v for v in CHANGES if target < v <= base_version), reverse=True):
            names = (names - CHANGES[version].added) | CHANGES[version].removed
    return frozenset(names)
