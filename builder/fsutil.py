"""Writes that are never seen half-done: a temp file beside the target, then a rename."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def atomic_copy(src: Path, dest: Path) -> None:
    staged = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, staged)
    os.replace(staged, dest)


def atomic_write_text(dest: Path, text: str) -> None:
    staged = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    staged.write_text(text, encoding="utf-8")
    os.replace(staged, dest)
