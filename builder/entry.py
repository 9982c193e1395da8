"""The `relay` executable: an unchanged `relay build` is answered from its stamp; anything else goes to `builder.cli`.

A no-op build is the command people run most, and most of its time was
Python importing click, the config's schema and the selection's pattern
matcher. So before any of that loads, this module finds the project's config
(as `relay` would: `--config`, `-C`, or the nearest one up), reads the dist/
folder's stamp (`builder.bundle.stamp`) and, when the stamp answers this very
command line and nothing it noted was touched, prints the last build's result
again. Whatever it cannot decide (an option it does not parse, no stamp, a
touched file, a damaged stamp) it leaves to the full command, which decides
again from scratch. Standard library only, besides the modules named.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from builder.bundle import stamp
from builder.commands.render.build import build_summary
from builder.errors import RelayError
from builder.paths import PYPROJECT, find_config, read_toml
from builder.textfmt import json_text

_GLOBAL_WITH_VALUE = ("--config", "-C", "--directory", "--profile", "--region")
_GLOBAL_FLAGS = ("--debug",)
# `relay build` options that must always reach the command: they build anyway, or build nothing.
_NOT_ANSWERED = ("--no-cache", "--explain", "-h", "--help")


def run() -> None:
    """The console script: the stamp's answer, else `builder.cli.run` (which exits without interpreter teardown)."""
    if _answered(sys.argv[1:]):
        os._exit(0)  # like builder.cli.run: nothing is left to close
    from builder.cli import run as run_cli

    run_cli()


def main(argv: list[str]) -> None:
    """As `builder.cli.main` (tests run relay in-process through here), raising SystemExit."""
    if _answered(argv):
        sys.exit(0)
    from builder.cli import main as main_cli

    main_cli(argv)


def _answered(argv: list[str]) -> bool:
    """Print the stamp's answer to `argv` and say so; False, having printed nothing, when it has none."""
    try:
        text = answer(argv)
    except KeyboardInterrupt:
        from builder.cli import exit_interrupted

        exit_interrupted(debug="--debug" in argv, as_json="--json" in argv)
    if text is None:
        return False
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        from builder.cli import stdout_closed

        stdout_closed()
    return True


def answer(argv: list[str]) -> str | None:
    """What `relay <argv>` would print for an unchanged build, or None when that takes the full command."""
    where = _parse(argv)
    if where is None:
        return None
    config, directory, as_json = where
    try:
        config_file = Path(config).resolve() if config else find_config(Path(directory) if directory else Path.cwd())
        document = read_toml(config_file)
        if config_file.name == PYPROJECT:
            document = document.get("tool", {}).get("relay", {})
        doc = stamp.load(config_file.parent / document.get("app", {}).get("dist", "dist"))
        if doc is None or argv not in doc.get("argv", []):
            return None
        asked = doc["request"]
        if asked != stamp.request(config_file, asked.get("names", ()), asked.get("import_check")):
            return None
        if not stamp.fresh(doc):
            return None
        result = stamp.unchanged(doc["result"])
        return json_text(result) if as_json else build_summary(result)
    except (RelayError, OSError, ValueError, LookupError, TypeError, AttributeError):
        return None  # the full command says what is wrong, if anything is


def _parse(argv: list[str]) -> tuple[str | None, str | None, bool] | None:
    """(--config, -C, --json) of a `relay [global options] build [...]` command line; None for any other."""
    config = directory = None
    at = 0
    while at < len(argv) and argv[at] != "build":
        name, equals, value = argv[at].partition("=")
        if name in _GLOBAL_WITH_VALUE and equals and name.startswith("--"):
            at += 1
        elif argv[at] in _GLOBAL_WITH_VALUE and at + 1 < len(argv):
            name, value = argv[at], argv[at + 1]
            at += 2
        elif argv[at] in _GLOBAL_FLAGS:
            at += 1
            continue
        else:
            return None
        if name == "--config":
            config = value
        elif name in ("-C", "--directory"):
            directory = value
    rest = argv[at + 1:]
    if at == len(argv) or any(arg.partition("=")[0] in _NOT_ANSWERED for arg in rest):
        return None
    return config, directory, "--json" in rest
