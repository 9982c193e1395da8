"""How library code reports long work without printing.

Library functions take a `Reporter` and call it; the command layer chooses
the implementation (progress on a terminal, nothing with `--json`). Nothing
here knows about terminals or click.

A wait whose length matters to the person watching (a canary interval, Lambda
finishing an update) is reported as one: `with reporter.waiting(what,
seconds=...)`, so the command layer can show what is awaited and how long
remains (a countdown on a terminal, a line now and then in a CI log).
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from typing import Protocol


class Reporter(Protocol):
    def step(self, message: str) -> None:
        """A unit of long work started or finished (shown as progress)."""

    def note(self, message: str) -> None:
        """Something the user should know (warnings, skipped work)."""

    def waiting(self, what: str, *, seconds: float, limit: bool = False) -> AbstractContextManager[None]:
        """The body waits for `what`: about `seconds` long, or at most `seconds` when `limit` (a timeout)."""


class SilentReporter:
    def step(self, message: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def waiting(self, what: str, *, seconds: float, limit: bool = False) -> AbstractContextManager[None]:
        return contextlib.nullcontext()
