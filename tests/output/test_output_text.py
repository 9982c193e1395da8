"""What the terminal can take, decided from the environment; tables and text that fit a width (pure)."""

from __future__ import annotations

import io

import pytest

from builder.commands.output import StderrReporter, Terminal, duration
from builder.commands.render.text import fit, table


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("environ", "color", "live"), [
    ({"TERM": "xterm-256color"}, True, True),
    ({"TERM": "xterm-256color", "NO_COLOR": "1"}, False, False),
    ({"TERM": "xterm-256color", "NO_COLOR": ""}, False, False),  # any value, as the brief asks
    ({"TERM": "dumb"}, False, False),
])
def test_a_terminal_gets_colour_and_redraws_unless_no_color_or_dumb(environ, color, live):
    terminal = Terminal.of(_Tty(), {**environ, "COLUMNS": "90"})
    assert (terminal.color, terminal.live, terminal.width) == (color, live, 90)


def test_a_pipe_gets_neither_colour_nor_redraws_nor_wrapping():
    assert Terminal.of(io.StringIO(), {"TERM": "xterm-256color"}) == Terminal(color=False, live=False, width=None)
    assert Terminal.of(io.StringIO(), {"COLUMNS": "70"}).width == 70


ROWS = [["orders", "update", "1 -> new", "1.1.0", "859920c10e04", "set environment; update code; publish version; "
         "move alias (a long explanation of why this function changes, enough to overflow any terminal)"],
        ["billing", "reuse", "1 -> 1", "1.0.0", "818ac62da508", "-"]]
HEADERS = ["function", "action", "alias", "artifact", "sha256", "work"]


@pytest.mark.parametrize("width", [60, 80, 100])
def test_a_table_wider_than_the_terminal_wraps_its_widest_column(width):
    text = table(ROWS, HEADERS, width=width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "859920c10e04" in text  # short columns stay whole
    words = " ".join(text.split())
    for word in ("publish", "version;", "overflow", "enough"):
        assert word in words


def test_a_table_that_fits_or_has_no_width_is_unchanged():
    from builder.textfmt import table as plain

    assert table(ROWS, HEADERS) == plain(ROWS, HEADERS)
    assert table(ROWS[1:], HEADERS, width=200) == plain(ROWS[1:], HEADERS)


def test_long_lines_wrap_under_their_own_indent():
    text = fit("  hint: " + "word " * 40, 50)
    lines = text.splitlines()
    assert len(lines) > 1 and all(len(line) <= 50 for line in lines)
    assert all(line.startswith("    ") for line in lines[1:])
    assert fit("short", 50) == "short" and fit("x" * 90, None) == "x" * 90


def test_durations_read_as_people_say_them():
    assert [duration(s) for s in (5, 65, 300, 3725)] == ["5s", "1m 05s", "5m 00s", "1h 02m"]


def test_a_long_wait_off_a_terminal_says_what_and_how_long_then_ticks(capsys):
    import time

    reporter = StderrReporter(terminal=Terminal(), tick=0.2)
    with reporter.waiting("canary 10% in prod, watching shop-errors", seconds=300):
        time.sleep(0.5)
    with reporter.waiting("Lambda finishing the update of shop-orders", seconds=900, limit=True):
        time.sleep(0.1)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0] == "  .. waiting 5m 00s: canary 10% in prod, watching shop-errors"
    assert any(line.startswith("  .. still waiting: canary 10% in prod") and line.endswith(" left") for line in lines)
    assert 2 <= len(lines) <= 4  # a line per tick, not one per second
    assert "Lambda finishing" not in err  # a short wait with only a limit is not mentioned
    assert "\x1b[" not in err
