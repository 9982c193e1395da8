"""The JSON Schemas in `schemas/`, shipped inside the wheel as `builder/schemas`."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jsonschema

_PACKAGED = Path(__file__).parent / "schemas"
_SOURCE_TREE = Path(__file__).parent.parent / "schemas"


def schema_dir() -> Path:
    return _PACKAGED if _PACKAGED.is_dir() else _SOURCE_TREE


@functools.cache
def load(name: str) -> dict:
    """Load `schemas/<name>.schema.json`."""
    with open(schema_dir() / f"{name}.schema.json", encoding="utf-8") as fh:
        return json.load(fh)


def errors(name: str, document: object) -> list[jsonschema.ValidationError]:
    """Every way `document` breaks schema `name`, most specific first."""

    validator = _strict_validator()(load(name))  # jsonschema loads here: ~50 ms, only when a document is checked
    found = sorted(validator.iter_errors(document), key=lambda e: (list(e.absolute_path), e.message))
    return [_most_specific(e) for e in found]


@functools.cache
def _strict_validator() -> type:
    """Draft 2020-12, except that an integer is an int: `timeout = 7.0` is a float, which Lambda refuses."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(base, type_checker=checker)


def _most_specific(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    import jsonschema

    best = jsonschema.exceptions.best_match([error])
    return best if best is not None else error


def key_path(error: jsonschema.ValidationError) -> str:
    """A dotted key path such as `functions.orders.handler`, or `(top level)`."""
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in error.absolute_path]
    return ".".join(parts).replace(".[", "[") or "(top level)"


def fingerprint(name: str, document: object) -> str:
    """A hash of (schema, document): the same pair always validates the same way.

    The document is serialised with each value's type (`typed`): the TOML date
    1979-05-27 and the string "1979-05-27", or 7 and 7.0, validate differently,
    so they never share a fingerprint.
    """
    schema_bytes = (schema_dir() / f"{name}.schema.json").read_bytes()
    doc_bytes = json.dumps(typed(document), sort_keys=True).encode()
    return hashlib.sha256(schema_bytes + b"\0" + doc_bytes).hexdigest()


def typed(value: object) -> object:
    """`value` as JSON where every scalar carries its Python type: ["int", 7], ["float", 7.0], ["date", "..."]."""
    if isinstance(value, dict):
        return {"dict": {str(key): [type(key).__name__, typed(item)] for key, item in value.items()}}
    if isinstance(value, list | tuple):
        return {type(value).__name__: [typed(item) for item in value]}
    if value is None or isinstance(value, bool | int | str):
        return [type(value).__name__, value]
    return [type(value).__name__, repr(value)]  # float (repr keeps 7.0 apart from 7), date, time, datetime, ...
