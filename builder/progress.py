"""How library code reports long work without printing.

Library functions take a `Reporter` and call it; the command layer chooses
the implementation (progress on a terminal, nothing with `--json`). Nothing
here knows about terminals or click.
"""

from __future__ import annotations

from typing import Protocol


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
