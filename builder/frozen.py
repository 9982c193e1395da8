"""Helpers for the frozen attrs records every module passes around.

`converter=to_tuple` would do at run time, but mypy's attrs plugin then types the
field's `__init__` parameter as an unsolved `Iterable[_T_co]` and rejects every
call. `to_tuple` accepts any iterable and leaves the field's declared type
(`tuple[X, ...]`) to say what it holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def to_tuple(items: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(items)
