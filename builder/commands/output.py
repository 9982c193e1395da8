"""Output for people and machines: JSON documents and progress on stderr.

Library code never prints: it returns results and reports progress through a
`builder.progress.Reporter`. The command layer picks the reporter: progress
lines on stderr for people and CI logs, a silent one with `--json`.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import click

from builder.progress import Reporter, SilentReporter


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
