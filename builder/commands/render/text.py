"""Text that fits the terminal: tables whose widest columns wrap, paragraphs wrapped with their indent.

Without a width (a pipe, a CI log) everything is left as `builder.textfmt`
writes it, so scripts that read human output see the same lines as before.
"""

from __future__ import annotations

import textwrap
from typing import Literal

from builder.textfmt import table as plain_table

_GAP = 2
_NARROWEST = 8  # a column is squeezed below this (or its header's longest word) only when nothing else fits
_TIGHTEST = 4


def table(rows: list[list[str]], headers: list[str], *, width: int | Literal["terminal"] | None = "terminal") -> str:
    """`builder.textfmt.table`, with the widest columns wrapped onto more lines when it is wider than `width`.

    By default as wide as stdout's terminal (`COLUMNS`, else the terminal's; not wrapped on a pipe).
    """
    if width == "terminal":
        from builder.commands.output import width as terminal_width

        width = terminal_width()
    natural = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    if width is None or sum(natural) + _GAP * (len(headers) - 1) <= width:
        return plain_table(rows, headers)
    widths = list(natural)
    available = width - _GAP * (len(headers) - 1)
    # Squeeze the widest columns of words first (they wrap between words), keeping header words whole; then
    # columns of single tokens (digests, versions); then, if nothing else fits, break header words too.
    floor = [min(natural[i], max([_NARROWEST, *map(len, h.split())])) for i, h in enumerate(headers)]
    prose = [any(" " in str(r[i]) for r in rows) for i in range(len(headers))]
    for allowed, limit in (([*prose], floor), ([True] * len(headers), floor),
                           ([True] * len(headers), [min(n, _TIGHTEST) for n in natural])):
        while sum(widths) > available:
            slack = [widths[i] - limit[i] if allowed[i] else 0 for i in range(len(widths))]
            widest = max(range(len(widths)), key=lambda i: (slack[i] > 0, widths[i]))
            if slack[widest] <= 0:
                break
            widths[widest] -= 1

    def lines(row: list[str]) -> list[str]:
        cells = [textwrap.wrap(str(c), w, break_long_words=True, break_on_hyphens=False) or [""]
                 for c, w in zip(row, widths, strict=False)]
        height = max(len(c) for c in cells)
        return ["  ".join((c[k] if k < len(c) else "").ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()
                for k in range(height)]

    out = [*lines(headers), "  ".join("-" * w for w in widths)]
    for row in rows:
        out += lines(row)
    return "\n".join(out)


def fit(text: str, width: int | None) -> str:
    """Each line longer than `width` wrapped, its continuation indented like it (plus two for a list's item)."""
    if width is None:
        return text
    out = []
    for line in text.splitlines():
        if len(line) <= width:
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        out += textwrap.wrap(line, width, initial_indent="", subsequent_indent=indent + "  ",
                             break_long_words=True, break_on_hyphens=False, drop_whitespace=True) or [line]
    return "\n".join(out)
