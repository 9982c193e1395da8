"""Output for people and machines: JSON documents, progress on stderr, what the terminal can take.

Library code never prints: it returns results and reports progress through a
`builder.progress.Reporter`. The command layer picks the reporter: progress
lines on stderr for people and CI logs, a silent one with `--json`.

What a stream can take is decided once, in `Terminal`: colour only on a
terminal without `NO_COLOR` (any value) or `TERM=dumb`; live redraws (the
countdown of a long wait) only there too; the width from `COLUMNS`, else the
terminal's, else none (a pipe or a CI log gets lines unwrapped). Long waits
show what is awaited and how long remains: a countdown line on a terminal
(rich), a line every `TICK_SECONDS` elsewhere, so a CI log shows progress
without a line per second.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import IO, Any

import attrs
import click

from builder.progress import Reporter, SilentReporter
from builder.textfmt import json_text

# A long wait off a terminal says how it is going this often.
TICK_SECONDS = 30.0
# A wait with only a limit (Lambda finishing an update) is not mentioned off a terminal before this.
QUIET_SECONDS = 10.0


@attrs.frozen
class Terminal:
    """What one output stream can take."""

    color: bool = False  # ANSI styles
    live: bool = False  # redrawing a line in place (countdowns)
    width: int | None = None  # wrap human output to this many columns; None: do not wrap

    @classmethod
    def of(cls, stream: IO[str] | None = None, environ: Mapping[str, str] | None = None) -> Terminal:
        """For `stream` (stdout by default) as the environment says: NO_COLOR, TERM=dumb, COLUMNS, a TTY or not."""
        environ = os.environ if environ is None else environ
        stream = sys.stdout if stream is None else stream
        tty = _isatty(stream)
        dumb = environ.get("TERM", "") == "dumb"
        plain = "NO_COLOR" in environ or dumb
        return cls(color=tty and not plain, live=tty and not plain, width=_width(environ, tty))


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _width(environ: Mapping[str, str], tty: bool) -> int | None:
    columns = environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) >= 20:
        return int(columns)
    if tty:
        return shutil.get_terminal_size().columns
    return None


def width(*, err: bool = False) -> int | None:
    """How wide human output on stdout (stderr with `err`) may be (None: do not wrap)."""
    return Terminal.of(sys.stderr if err else sys.stdout).width


def can_ask(environ: Mapping[str, str] | None = None) -> bool:
    """A person can answer a question: stdin and stderr are terminals and this is not a CI run (CI set)."""
    environ = os.environ if environ is None else environ
    ci = environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return not ci and _isatty(sys.stdin) and _isatty(sys.stderr)


def echo(text: str, *, err: bool = False) -> None:
    """Human text: ANSI styles removed where the stream takes none (NO_COLOR, TERM=dumb, a pipe)."""
    click.echo(text, err=err, color=Terminal.of(sys.stderr if err else sys.stdout).color)


def labelled(label: str, text: str) -> None:
    """`label: text` on stderr (error:, hint:, note:), wrapped to the terminal under its label; unwrapped off one."""
    import textwrap

    line = f"{label}: {text}"
    wide = width(err=True)
    if wide is not None and len(line) > wide:
        line = "\n".join(textwrap.wrap(line, width=wide, subsequent_indent=" " * (len(label) + 2),
                                       break_on_hyphens=False, break_long_words=True))
    click.echo(line, err=True)


class StderrReporter:
    """Progress lines on stderr, safe to call from worker threads; long waits as countdowns."""

    def __init__(self, *, verbose: bool = True, terminal: Terminal | None = None, tick: float = TICK_SECONDS) -> None:
        self._lock = threading.RLock()
        self._verbose = verbose
        self._terminal = terminal or Terminal.of(sys.stderr)
        self._tick = tick
        self._live: _Countdowns | None = None

    def step(self, message: str) -> None:
        if self._verbose:
            self._write("  .. ", "cyan", message)

    def note(self, message: str) -> None:
        self._write("  !! ", "yellow", message)

    def waiting(self, what: str, *, seconds: float, limit: bool = False) -> AbstractContextManager[None]:
        if self._terminal.live:
            return self._countdown(what, seconds, limit)
        return self._ticking(what, seconds, limit)

    # -- lines -------------------------------------------------------------------------------------------

    def _write(self, mark: str, color: str, message: str) -> None:
        import textwrap

        width = self._terminal.width
        text = mark + message
        if width is not None and len(text) > width:
            text = "\n".join(textwrap.wrap(text, width=width, subsequent_indent=" " * len(mark),
                                           break_on_hyphens=False, break_long_words=True))
        if self._terminal.color:
            text = click.style(mark, fg=color) + text[len(mark):]
        with self._lock:
            if self._live is not None:
                self._live.console.print(text, markup=False, highlight=False, soft_wrap=True, emoji=False)
            else:
                click.echo(text, err=True, color=self._terminal.color)

    # -- waits off a terminal: a line at the start (planned waits) and every tick -----------------------------

    @contextlib.contextmanager
    def _ticking(self, what: str, seconds: float, limit: bool) -> Iterator[None]:
        started = time.monotonic()
        if not limit:
            self.step(f"waiting {duration(seconds)}: {what}")
        done = threading.Event()

        def tick() -> None:
            first = QUIET_SECONDS if limit else self._tick
            pause = min(first, self._tick)
            while not done.wait(pause):
                self.step(f"still waiting: {what}: {_remaining(started, seconds, limit)}")
                pause = self._tick

        ticker = threading.Thread(target=tick, name="relay-wait-ticker", daemon=True)
        ticker.start()
        try:
            yield
        finally:
            done.set()
            ticker.join()

    # -- waits on a terminal: one live countdown line per wait (several functions can wait at once) ----------

    @contextlib.contextmanager
    def _countdown(self, what: str, seconds: float, limit: bool) -> Iterator[None]:
        with self._lock:
            if self._live is None:
                self._live = _Countdowns(self._terminal)
            live = self._live
            task = live.add(what, seconds, limit)
        try:
            yield
        finally:
            with self._lock:
                if live.remove(task):
                    self._live = None


class _Countdowns:
    """rich's Progress as a set of countdown lines, redrawn twice a second and removed when done."""

    def __init__(self, terminal: Terminal) -> None:
        from rich.console import Console
        from rich.progress import Progress, TextColumn

        self.console = Console(stderr=True, force_terminal=True, width=terminal.width, highlight=False,
                               emoji=False)
        self.progress = Progress(TextColumn("  [cyan]..[/cyan] {task.description}"), TextColumn("{task.fields[left]}"),
                                 console=self.console, transient=True, refresh_per_second=2,
                                 redirect_stdout=False, redirect_stderr=False)
        self._waits: dict[Any, tuple[float, float, bool]] = {}
        self._stop = threading.Event()
        self._updater = threading.Thread(target=self._update, name="relay-countdown", daemon=True)
        self.progress.start()
        self._updater.start()

    def add(self, what: str, seconds: float, limit: bool) -> Any:
        from rich.markup import escape

        task = self.progress.add_task(escape(what), total=None, left=_remaining(time.monotonic(), seconds, limit))
        self._waits[task] = (time.monotonic(), seconds, limit)
        return task

    def remove(self, task: Any) -> bool:
        """Drop a finished wait; True when it was the last one (the display is stopped then)."""
        self._waits.pop(task, None)
        self.progress.remove_task(task)
        if self._waits:
            return False
        self._stop.set()
        self._updater.join()
        self.progress.stop()
        return True

    def _update(self) -> None:
        while not self._stop.wait(0.5):
            for task, (started, seconds, limit) in list(self._waits.items()):
                with contextlib.suppress(KeyError):
                    self.progress.update(task, left=_remaining(started, seconds, limit))


def _remaining(started: float, seconds: float, limit: bool) -> str:
    elapsed = time.monotonic() - started
    if limit:
        return f"{duration(elapsed)} so far, gives up in {duration(max(0.0, seconds - elapsed))}"
    return f"{duration(max(0.0, seconds - elapsed))} left"


def duration(seconds: float) -> str:
    """`4m 05s`, `45s`, `1h 02m`: short, and the same width while it counts down."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def reporter_for(as_json: bool) -> Reporter:
    """Progress on stderr for people and CI logs; nothing with --json (stdout is the document)."""
    if as_json:
        return SilentReporter()
    return StderrReporter()


def emit_json(document: Any) -> None:
    click.echo(json_text(document))
