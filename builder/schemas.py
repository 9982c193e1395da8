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
    import jsonschema  # ~50 ms to import: only when a document is really checked

    validator = jsonschema.Draft202012Validator(load(name))
    found = sorted(validator.iter_errors(document), key=lambda e: (list(e.absolute_path), e.message))
    return [_most_specific(e) for e in found]


def _most_specific(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    import jsonschema

    best = jsonschema.exceptions.best_match([error])
    return best if best is not None else error


def key_path(error: jsonschema.ValidationError) -> str:
    """A dotted key path such as `functions.orders.handler`, or `(top level)`."""
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in error.absolute_path]
    return ".".join(parts).replace(".[", "[") or "(top level)"


def fingerprint(name: str, document: object) -> str:
    """A hash of (schema, document): the same pair always validates the same way."""
    schema_bytes = (schema_dir() / f"{name}.schema.json").read_bytes()
    doc_bytes = json.dumps(document, sort_keys=True, default=str).encode()
    return hashlib.sha256(schema_bytes + b"\0" + doc_bytes).hexdigest()
