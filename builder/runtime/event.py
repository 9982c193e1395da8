"""The event a local invocation passes to the handler: a JSON document from a file or stdin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from builder.errors import UsageError


def read_event(source: str | None, stdin: TextIO) -> Any:
    """The event: JSON from the file `source`, from `stdin` when it is "-", else `{}`."""
    if source is None:
        return {}
    where = "stdin" if source == "-" else source
    try:
        text = stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        raise UsageError(f"event file not found: {source}",
                         hint="Pass --event FILE (a JSON file) or --event - for stdin.") from None
    except UnicodeDecodeError:
        raise UsageError(f"event from {where} is not UTF-8 text", hint="Lambda events are JSON documents.") from None
    except OSError as exc:
        raise UsageError(f"event file {source}: cannot be read ({exc.strerror})",
                         hint="Pass --event FILE (a readable JSON file) or --event - for stdin.") from None
    if not text.strip():
        raise UsageError(f"event from {where} is empty", hint="An event is a JSON document, e.g. {}.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"event from {where} is not valid JSON: {exc}", hint="Lambda events are JSON documents.") from None
