"""Rendering for people and machines, and progress on a terminal.

Library code never prints: it returns results and reports progress through a
`Reporter`. The CLI picks the reporter: a terminal one on a TTY, a silent one
with `--json` or in CI logs.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

import click


class Reporter(Protocol):
    def step(self, message: str) -> None:
        """A unit of long work started or finished (shown as progress)."""

    def note(self, message: str) -> None:
        """Something the user should know (warnings, skipped work)."""


class SilentReporter:
    def step(self, message: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass


class StderrReporter:
    """Progress lines on stderr, safe to call from worker threads."""

    def __init__(self, *, verbose: bool = True) -> None:
        self._lock = threading.Lock()
        self._verbose = verbose

    def step(self, message: str) -> None:
        if self._verbose:
            self._write(click.style("  .. ", fg="cyan") + message)

    def note(self, message: str) -> None:
        self._write(click.style("  !! ", fg="yellow") + message)

    def _write(self, line: str) -> None:
        with self._lock:
            click.echo(line, err=True)


def reporter_for(as_json: bool) -> Reporter:
    """Progress on stderr for people and CI logs; nothing with --json (stdout is the document)."""
    if as_json:
        return SilentReporter()
    return StderrReporter()


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=True))


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
